//! The protocol's methods, one module per tag of the spec (`components.tags`): `handlers/<tag>.rs`
//! implements the generated `flynn_protocol::<Tag>Methods` trait for [`Gateway`], at the end of
//! the file, and holds the functions that do the work (`system.presence` is
//! `InsightsMethods::system_presence` in `insights.rs`, which calls `insights::presence`). This
//! module implements only `HandlerBase` (the connection type and the access checks); the
//! generated blanket impl makes `Gateway` a `flynn_protocol::Handler`. Methods that answer from
//! memory are plain functions routed with `Reply::ready` (no future, no allocation per call);
//! the others are `async` and routed with `Reply::later`.

mod agent;
mod canvas;
mod config;
mod insights;
mod nodes;
mod operations;
pub(crate) mod pairing;
mod rpc;
pub(crate) mod sessions;
mod store_error;
mod system;
mod tools;

use flynn_protocol::HandlerBase;

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

pub(crate) use store_error::store_error;

impl HandlerBase for Gateway {
    type Connection = ConnectionState;

    fn granted_scopes(&self, connection: &ConnectionState) -> flynn_protocol::Scopes {
        connection.identity.scopes()
    }

    fn session_allowed(&self, connection: &ConnectionState, session_id: &str) -> bool {
        connection.identity.session_allowed(session_id) || connection.owns_session(session_id)
    }
}

/// The transport's view of the gateway: requests go to the generated `dispatch` (routing to the
/// tag traits above), and a closed connection releases what it held.
impl crate::connection::ConnectionService for Gateway {
    fn dispatch<'s>(
        &'s self,
        call: flynn_protocol::wire::Call<ConnectionState>,
        method: flynn_protocol::Method,
        params: Option<&serde_json::value::RawValue>,
    ) -> flynn_protocol::wire::Dispatched<'s> {
        flynn_protocol::dispatch(self, call, method, params)
    }

    async fn on_disconnect(&self, connection: &ConnectionState) {
        self.connection_closed(&connection.id);
    }
}
