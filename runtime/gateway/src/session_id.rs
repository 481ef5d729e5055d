//! The session-id rule for ids that do not arrive as RPC params (webhook templates and
//! configuration, inbox turns, push subscriptions). The rule itself is the spec's
//! `components.schemas.SessionId` (decision session-id-rule), generated as
//! [`SessionId`]: RPC params are typed with it, so they are checked when they are decoded, and
//! this module checks the other paths with the same generated code, adding the error a client
//! reads. Its own module so that those callers do not reach into `handlers::sessions` (and
//! through it the whole gateway).

use flynn_protocol::types::SessionId;
use flynn_protocol::wire::RpcError;

/// Checks a client-supplied session id against the spec's `SessionId`; `field` names it in the
/// error (InvalidRequest on `params.<field>`).
pub fn parse_session_id(id: &str, field: &str) -> Result<SessionId, RpcError> {
    SessionId::try_from(id).map_err(|reason| {
        RpcError::invalid(
            format!("params.{field}"),
            format!(
                "`{field}` is not a valid session id ({reason}): a session id is non-empty, \
                 has no control characters and at most the length of the spec's schema \
                 `SessionId`, e.g. `telegram:123456`"
            ),
        )
    })
}

/// [`parse_session_id`] for callers that keep the id as a `String`.
pub fn validate_session_id(id: &str, field: &str) -> Result<(), RpcError> {
    parse_session_id(id, field).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_the_specs_session_id_schema() {
        assert!(validate_session_id("telegram:123456", "sessionId").is_ok());
        // Characters, not bytes: 256 four-byte characters pass, 257 do not.
        assert!(validate_session_id(&"😀".repeat(256), "sessionId").is_ok());
        for bad in [
            String::new(),
            "x".repeat(257),
            "a\u{7}b".to_owned(),
            "a\nb".to_owned(),
            "a\u{85}b".to_owned(),
        ] {
            let error = validate_session_id(&bad, "sessionId").unwrap_err();
            assert_eq!(error.code, flynn_protocol::ErrorCode::InvalidRequest.code());
            assert_eq!(
                error.data,
                Some(serde_json::json!({ "path": "params.sessionId" })),
                "{bad:?}"
            );
        }
        // Whitespace that is not a control character is allowed (sessions.create refuses it).
        assert!(validate_session_id("a b", "sessionId").is_ok());
    }
}
