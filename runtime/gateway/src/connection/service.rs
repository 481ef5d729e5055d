//! What the transport knows of the rest of the gateway: a service that runs one request for a
//! connection and hears when a connection is gone. `Gateway` implements it (routing to the
//! handlers); the connection loop never names the handlers or the gateway's state.

use std::future::Future;

use flynn_protocol::Method;
use flynn_protocol::wire::{Call, Dispatched};
use serde_json::value::RawValue;

use super::state::ConnectionState;

/// The service behind the WebSocket connections.
pub trait ConnectionService: Send + Sync + 'static {
    /// Runs one parsed request of `call.connection`: its reply frame (or the error to answer
    /// with) at once, or a future for it. Scope checks belong here, with the methods.
    fn dispatch<'s>(
        &'s self,
        call: Call<ConnectionState>,
        method: Method,
        params: Option<&RawValue>,
    ) -> Dispatched<'s>;

    /// The connection has closed and left the registry: release what it held (node
    /// registrations, approvals it was asked for).
    fn on_disconnect(&self, connection: &ConnectionState) -> impl Future<Output = ()> + Send;
}
