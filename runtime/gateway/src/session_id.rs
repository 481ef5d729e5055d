//! The one rule every client-supplied session id meets, wherever it comes from (RPC params,
//! webhook templates, inbox turns, push subscriptions). Its own module so that those callers do
//! not reach into `handlers::sessions` (and through it the whole gateway).

use flynn_protocol::wire::RpcError;

/// Longest accepted session id.
const MAX_SESSION_ID: usize = 256;

/// Checks a client-supplied session id; `field` names it in the error.
pub fn validate_session_id(id: &str, field: &str) -> Result<(), RpcError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID || id.chars().any(char::is_control) {
        return Err(RpcError::invalid(
            format!("params.{field}"),
            format!(
                "`{field}` must be 1-{MAX_SESSION_ID} characters without control characters, e.g. `telegram:123456`"
            ),
        ));
    }
    Ok(())
}
