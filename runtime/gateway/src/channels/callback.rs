//! What a platform module (`teams`, `google_chat`, `bluebubbles`, `gmail`) gets from the route
//! table ([`super::routes`]) and the helpers it answers with. Its own module so that the
//! platforms do not reach back into the route table that calls them.

use std::collections::HashMap;

use bytes::Bytes;
use warp::reply::Reply;

use super::{Accepted, ChannelError};

/// A callback as the platform modules get it.
pub struct Callback {
    pub headers: http::HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

/// What a platform module answers.
pub type HandledResult = Result<warp::reply::Response, ChannelError>;

/// `{"ok":true,"outcome":..}` with 200.
pub fn accepted(outcome: Accepted) -> warp::reply::Response {
    let outcome = match outcome {
        Accepted::Duplicate => "duplicate",
        Accepted::Turn => "turn",
        Accepted::Gated => "gated",
        Accepted::Ignored => "ignored",
    };
    warp::reply::json(&serde_json::json!({ "ok": true, "outcome": outcome })).into_response()
}

/// `{"ok":true,"outcome":"ignored"}`: not a message for the agent (the bot's own, another
/// event type).
pub fn ignored() -> warp::reply::Response {
    warp::reply::json(&serde_json::json!({ "ok": true, "outcome": "ignored" })).into_response()
}

/// Parses a JSON body into the platform's payload type, naming what was wrong.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ChannelError> {
    serde_json::from_slice(body)
        .map_err(|e| ChannelError::BadRequest(format!("the body is not a valid {what}: {e}")))
}

/// Compares a presented shared token with the expected one in constant time.
pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.is_some_and(|p| {
        !expected.is_empty() && bool::from(p.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// A secret named by a `*_env` key, or 503 naming the variable to set.
pub fn secret(env: Option<&str>, key: &str) -> Result<String, ChannelError> {
    env.and_then(crate::env_secrets::env_secret)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ChannelError::Unavailable(format!(
                "the secret of `{key}` is not set: put it in the environment variable that key names and restart"
            ))
        })
}
