//! The channels' HTTP routes: `POST /teams/events`, `POST /google-chat/events`,
//! `POST /bluebubbles/events`, `POST /gmail/push`. They bypass the gateway token (each
//! platform signs its callbacks its own way) and answer JSON: `{"ok":true,"outcome":..}` when
//! the callback was taken (Google Chat: the message reply), else
//! `{"error":{"code":..,"message":..}}` with 400/401/404/413/503.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

use super::callback::{Callback, HandledResult};
use super::jwt::JwtError;
use super::{ChannelError, MAX_EVENT_BYTES};
use crate::gateway::Gateway;

/// All four routes.
pub fn routes(gateway: Arc<Gateway>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let teams = route(gateway.clone(), "teams", "events", |gw, cb| {
        Box::pin(async move { super::teams::handle(&gw, cb).await })
    });
    let chat = route(gateway.clone(), "google-chat", "events", |gw, cb| {
        Box::pin(async move { super::google_chat::handle(&gw, cb).await })
    });
    let bluebubbles = route(gateway.clone(), "bluebubbles", "events", |gw, cb| {
        Box::pin(async move { super::bluebubbles::handle(&gw, cb).await })
    });
    let gmail = route(gateway, "gmail", "push", |gw, cb| {
        Box::pin(async move { super::gmail::handle(&gw, cb).await })
    });
    teams
        .or(chat)
        .unify()
        .or(bluebubbles)
        .unify()
        .or(gmail)
        .unify()
        .boxed()
}

type Handler =
    fn(Arc<Gateway>, Callback) -> std::pin::Pin<Box<dyn Future<Output = HandledResult> + Send>>;

fn route(
    gateway: Arc<Gateway>,
    first: &'static str,
    second: &'static str,
    handler: Handler,
) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let query = warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify();
    warp::post()
        .and(warp::path(first))
        .and(warp::path(second))
        .and(warp::path::end())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::body::stream())
        .then(move |headers, query, body| {
            let gateway = gateway.clone();
            async move {
                let outcome = match read_body(body).await {
                    Ok(body) => {
                        handler(
                            gateway,
                            Callback {
                                headers,
                                query,
                                body,
                            },
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                outcome.unwrap_or_else(|e| error_response(first, &e))
            }
        })
        .boxed()
}

async fn read_body<S, B>(body: S) -> Result<Bytes, ChannelError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|_| ChannelError::BadRequest("the request body was cut".into()))?;
        if collected.len() as u64 + chunk.remaining() as u64 > MAX_EVENT_BYTES {
            return Err(ChannelError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(collected))
}

fn error_response(route: &str, error: &ChannelError) -> warp::reply::Response {
    let (status, code) = match error {
        ChannelError::Disabled(_) => (StatusCode::NOT_FOUND, -3),
        ChannelError::Token(JwtError::KeysUnavailable(_)) | ChannelError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, 5)
        }
        ChannelError::Token(JwtError::Missing) => (StatusCode::UNAUTHORIZED, -4),
        ChannelError::Token(_) | ChannelError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, -5),
        ChannelError::BadRequest(_) => (StatusCode::BAD_REQUEST, -2),
        ChannelError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, -2),
    };
    if status == StatusCode::UNAUTHORIZED {
        crate::metrics::get().auth_failure("http");
        tracing::info!(route, %error, "channel callback refused");
    } else if status.is_server_error() {
        tracing::warn!(route, %error, "channel callback not taken");
    }
    let body = serde_json::json!({ "error": { "code": code, "message": error.to_string() } });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
