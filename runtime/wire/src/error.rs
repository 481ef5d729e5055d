//! The protocol's error object, `{code, message, data?}`, with constructors for the errors the
//! runtime and the generated dispatcher send.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{WireCode, codes};

/// A protocol error: `{code, message, data?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with one of the spec's codes (the generated `ErrorCode`).
    pub fn new(code: impl WireCode, message: impl Into<String>) -> Self {
        Self::with_code(code.code(), message)
    }

    /// An error with a code given as its wire integer (one of [`codes`]).
    pub fn with_code(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The code as the generated `ErrorCode`, when the spec defines it.
    pub fn error_code<C: WireCode>(&self) -> Option<C> {
        C::from_code(self.code)
    }

    /// ScopeRequired (-6): the connection's credential lacks the scope `method` declares.
    pub fn scope_required(method: &str, scope: &str) -> Self {
        Self::with_code(
            codes::SCOPE_REQUIRED,
            format!(
                "`{method}` needs the `{scope}` scope, which this connection's token does not hold; connect with a token that has it (server.tokens scopes)"
            ),
        )
        .with_data(serde_json::json!({ "scope": scope, "method": method }))
    }

    /// ScopeRequired (-6): the connection's credential is limited to other sessions.
    pub fn session_not_allowed(method: &str, param: &str, session_id: &str) -> Self {
        Self::with_code(
            codes::SCOPE_REQUIRED,
            format!(
                "`{method}`: this connection's token may not use session `{session_id}` (params.{param}); its sessions are limited by server.tokens sessions"
            ),
        )
        .with_data(serde_json::json!({ "scope": "chat", "method": method }))
    }

    /// -2 with `data.path` naming the offending field (a JSON path such as `params.limit`).
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        Self::with_code(codes::INVALID_REQUEST, message)
            .with_data(serde_json::json!({ "path": path }))
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::with_code(
            codes::METHOD_NOT_FOUND,
            format!(
                "unknown method `{method}`; rpc.discover lists the methods this gateway serves"
            ),
        )
        .with_data(serde_json::json!({ "method": method }))
    }

    pub fn session_not_found(session_id: &str) -> Self {
        Self::with_code(
            codes::SESSION_NOT_FOUND,
            format!(
                "session `{session_id}` does not exist; sessions.list shows the known sessions"
            ),
        )
        .with_data(serde_json::json!({ "sessionId": session_id }))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::with_code(codes::INTERNAL_ERROR, message)
    }
}
