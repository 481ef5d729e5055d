//! A parsed request frame (what `crate::parse_request` returns and the generated `dispatch` takes).

use serde_json::value::RawValue;

use crate::ids::RequestId;

/// A parsed request frame, ready for the generated `dispatch`; `params` borrows from the frame's
/// text. `M` is the generated `Method`.
#[derive(Debug)]
pub struct Request<'a, M> {
    pub id: RequestId,
    /// The frame carried `"jsonrpc": "2.0"`; the reply carries it too.
    pub jsonrpc: bool,
    pub method: M,
    /// The params object, or `None` when absent, `null` or `[]` (what JSON-RPC libraries send
    /// for a call without params).
    pub params: Option<&'a RawValue>,
    /// A JSON-RPC 2.0 notification (`"jsonrpc": "2.0"` and no `id`): it runs, but nothing is
    /// sent back, neither its reply nor its events; `id` is then a placeholder that never
    /// reaches the wire.
    pub notification: bool,
}
