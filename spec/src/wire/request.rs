//! A parsed request frame (what `super::parse_request` returns and `crate::dispatch` takes).

use serde_json::value::RawValue;

use super::ids::RequestId;
use crate::Method;

/// A parsed request frame, ready for `crate::dispatch`; `params` borrows from the frame's text.
#[derive(Debug)]
pub struct Request<'a> {
    pub id: RequestId,
    /// The frame carried `"jsonrpc": "2.0"`; the reply carries it too.
    pub jsonrpc: bool,
    pub method: Method,
    /// The params object, or `None` when absent, `null` or `[]` (what JSON-RPC libraries send
    /// for a call without params).
    pub params: Option<&'a RawValue>,
    /// A JSON-RPC 2.0 notification (`"jsonrpc": "2.0"` and no `id`): it runs, but nothing is
    /// sent back, neither its reply nor its events; `id` is then a placeholder that never
    /// reaches the wire.
    pub notification: bool,
}
