//! What a handler receives with every call.

use std::sync::Arc;

use crate::events::EventEmitter;
use crate::ids::RequestId;

/// What a handler receives with every call.
pub struct Call<C> {
    /// The connection's state.
    pub connection: Arc<C>,
    /// Emits events for this request.
    pub events: EventEmitter,
}

impl<C> Call<C> {
    pub fn new(connection: Arc<C>, events: EventEmitter) -> Self {
        Self { connection, events }
    }

    pub fn id(&self) -> &RequestId {
        self.events.request_id()
    }

    /// The request carried `"jsonrpc": "2.0"` (its reply and events echo it).
    pub fn jsonrpc(&self) -> bool {
        self.events.jsonrpc()
    }
}
