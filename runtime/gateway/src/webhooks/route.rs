//! The `POST /webhooks/<name>` route: checks a delivery in the documented order and turns it
//! into an agent turn.
//!
//! Order: unknown or disabled hook 404; method 405; `Content-Length` over the bound 413; an
//! unsigned hook: browser `Origin` 403, then the gateway token (chat scope) 401/403; the body,
//! read up to the bound (413) within [`BODY_READ_TIMEOUT`] (408); a signed hook: headers,
//! signature and timestamp 401, then its delivery id, accepted once (a replay is 401); the body as
//! JSON 400; the session pointer 400. Then the turn starts and the answer is 202, or with
//! `?wait=true` 200 with its result when it ends within the hook's `wait_timeout_secs`.
//! Every delivery is counted in `webhook_deliveries_total{hook,outcome}`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use flynn_protocol::types::Scope;

use super::config::WebhookConfig;
use super::signature::{self, SignatureError};
use super::template::{self, SessionError, Template};
use crate::gateway::{Gateway, now_ms};
use crate::http_auth::Peer;
use crate::inbox::{self, InboundMessage};

/// How long a delivery's body may take to arrive once its head has.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The route; other paths fall through to the next filter.
pub fn route(gateway: Arc<Gateway>) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path("webhooks")
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::body::stream())
        .then(
            move |name: String,
                  method: http::Method,
                  headers: http::HeaderMap,
                  peer: Option<Peer>,
                  query: String,
                  body| {
                let gateway = gateway.clone();
                async move {
                    let request = Request {
                        name,
                        method,
                        headers,
                        peer,
                        wait: wants_wait(&query),
                    };
                    deliver(&gateway, request, body).await
                }
            },
        )
        .boxed()
}

/// A delivery's head.
struct Request {
    name: String,
    method: http::Method,
    headers: http::HeaderMap,
    peer: Option<Peer>,
    wait: bool,
}

/// An answer and the outcome it is counted as.
type Answer = (Response, &'static str);

async fn deliver<S, B>(gateway: &Arc<Gateway>, request: Request, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let config = gateway.config();
    let hook = config.webhooks.get(&request.name).filter(|h| h.enabled);
    let label = if hook.is_some() {
        request.name.as_str()
    } else {
        "unknown"
    };
    let (response, outcome) = match hook {
        None => refuse(
            StatusCode::NOT_FOUND,
            -3,
            "unknown_hook",
            "no webhook of that name is configured; hooks are `[webhooks.<name>]` tables of the config",
        ),
        Some(hook) => handle(gateway, hook, &request, body).await,
    };
    crate::metrics::get().webhook(label, outcome);
    if response.status().is_success() {
        tracing::info!(
            hook = label,
            outcome,
            status = response.status().as_u16(),
            "webhook delivery"
        );
    } else {
        tracing::info!(
            hook = label,
            outcome,
            status = response.status().as_u16(),
            "webhook delivery refused"
        );
    }
    response
}

async fn handle<S, B>(
    gateway: &Arc<Gateway>,
    hook: &WebhookConfig,
    request: &Request,
    body: S,
) -> Answer
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let checked = async {
        check_head(hook, request)?;
        let keys = hook_keys(hook, &request.name)?;
        if keys.is_none() {
            check_unsigned(gateway, request)?;
        }
        let body = read_bounded(body, hook.max_body_bytes)
            .await
            .map_err(|e| Box::new(e.answer(hook)))?;
        let delivery_id = match keys {
            Some(keys) => authenticate(gateway, hook, request, &keys, &body).await?,
            None => format!("wh_{}", uuid::Uuid::new_v4().simple()),
        };
        let payload: Value = serde_json::from_slice(&body).map_err(|e| {
            Box::new(refuse(
                StatusCode::BAD_REQUEST,
                -2,
                "bad_json",
                &format!("the body is not JSON ({e}); webhooks carry a JSON payload"),
            ))
        })?;
        start(gateway, hook, request, delivery_id, &payload).await
    };
    checked.await.unwrap_or_else(|refused| *refused)
}

/// The method, and the declared length against the hook's bound.
fn check_head(hook: &WebhookConfig, request: &Request) -> Result<(), Box<Answer>> {
    if request.method != http::Method::POST {
        let (mut response, outcome) = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            -2,
            "method_not_allowed",
            "webhooks are delivered with POST",
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return Err(Box::new((response, outcome)));
    }
    if content_length(&request.headers).is_some_and(|length| length > hook.max_body_bytes as u64) {
        return Err(Box::new(too_large(hook)));
    }
    Ok(())
}

/// The hook's HMAC keys (`None`: an unsigned hook). Checked at start and reload, so an error
/// here means the environment changed under a reload; it is logged for the operator.
fn hook_keys(hook: &WebhookConfig, name: &str) -> Result<Option<Vec<Vec<u8>>>, Box<Answer>> {
    if hook.secret_env.is_none() {
        return Ok(None);
    }
    hook.keys().map(Some).map_err(|why| {
        tracing::error!(hook = name, %why, "a webhook's secret is not usable");
        Box::new(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -2,
            "misconfigured",
            "the hook's secret is not available; the operator must fix its secret_env",
        ))
    })
}

/// An unsigned hook: no browser page may drive it, and it needs the gateway token (chat scope)
/// whenever one is configured, whatever `server.auth_http` says (decision webhook-auth).
fn check_unsigned(gateway: &Gateway, request: &Request) -> Result<(), Box<Answer>> {
    let config = gateway.config();
    if let Some(origin) = request.headers.get(http::header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !config.server.allowed_origins.iter().any(|o| *o == origin) {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                -5,
                "browser_origin",
                "an unsigned webhook does not take deliveries from browser pages; sign the hook (secret_env) or list the origin in server.allowed_origins",
            )));
        }
    }
    crate::http_auth::require_http_scope(gateway, &request.headers, request.peer, Scope::Chat)
        .map_err(|denied| Box::new((*denied, "unauthorized")))
}

/// A signed hook: the signature, the timestamp and the delivery id (once per replay window).
async fn authenticate(
    gateway: &Gateway,
    hook: &WebhookConfig,
    request: &Request,
    keys: &[Vec<u8>],
    body: &[u8],
) -> Result<String, Box<Answer>> {
    let now = now_ms();
    let verified = signature::verify(
        hook.scheme,
        keys,
        &request.headers,
        body,
        hook.tolerance_secs(),
        now.div_euclid(1000),
    )
    .map_err(|e| {
        let code = match e {
            SignatureError::Missing(..) => -4,
            _ => -5,
        };
        Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            code,
            e.reason(),
            &e.to_string(),
        ))
    })?;
    let id = verified.delivery_id;
    let forget_before = now.saturating_sub(hook.replay_window_ms());
    match gateway
        .store
        .record_webhook_delivery(&request.name, &id, now, forget_before)
        .await
    {
        Ok(true) => Ok(id),
        Ok(false) => Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            -5,
            "replayed",
            "this delivery id was already accepted; each delivery is taken once",
        ))),
        Err(e) => {
            tracing::error!(hook = request.name, error = %e, "cannot record a webhook delivery id");
            Err(Box::new(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                -2,
                "store_unavailable",
                "the delivery could not be recorded; retry later",
            )))
        }
    }
}

/// Starts the turn and answers 202, or 200 with its result under `?wait=true`.
async fn start(
    gateway: &Arc<Gateway>,
    hook: &WebhookConfig,
    request: &Request,
    delivery_id: String,
    payload: &Value,
) -> Result<Answer, Box<Answer>> {
    let message = InboundMessage {
        session_id: session(hook, &request.name, payload)?,
        text: message(hook, &request.name, payload)?,
        sender_name: Some(request.name.clone()),
        may_use_tools: hook.tools,
    };
    let started = inbox::start_turn(gateway, message, Arc::new(inbox::Discard))
        .await
        .map_err(|e| {
            Box::new(refuse(
                StatusCode::BAD_REQUEST,
                e.code,
                "bad_message",
                &e.message,
            ))
        })?;
    let accepted =
        json!({ "id": delivery_id, "sessionId": started.session_id, "status": "accepted" });
    if !request.wait {
        return Ok((reply(StatusCode::ACCEPTED, &accepted), "accepted"));
    }
    let wait = Duration::from_secs(hook.wait_timeout_secs);
    Ok(match tokio::time::timeout(wait, started.reply).await {
        Ok(Ok(Ok(result))) => {
            let mut body = serde_json::to_value(result).unwrap_or_else(|_| json!({}));
            if let Some(fields) = body.as_object_mut() {
                fields.insert("id".into(), json!(delivery_id));
                fields.insert("sessionId".into(), json!(started.session_id));
                fields.insert("status".into(), json!("completed"));
            }
            (reply(StatusCode::OK, &body), "completed")
        }
        Ok(Ok(Err(error))) => {
            let body = json!({ "id": delivery_id, "sessionId": started.session_id, "status": "failed", "error": error });
            (reply(StatusCode::OK, &body), "failed")
        }
        // The lane dropped the turn's reply (shutdown) or the bound passed: the turn was
        // accepted; its outcome is for agent.attach.
        Ok(Err(_)) | Err(_) => (reply(StatusCode::ACCEPTED, &accepted), "accepted"),
    })
}

/// The delivery's session: the hook's, with the value at `session_pointer` appended.
fn session(hook: &WebhookConfig, name: &str, payload: &Value) -> Result<String, Box<Answer>> {
    let base = hook.base_session(name);
    template::session_for(&base, hook.session_pointer.as_deref(), payload).map_err(|e| {
        Box::new(match e {
            SessionError::Missing => refuse(
                StatusCode::BAD_REQUEST,
                -2,
                "missing_session",
                "the payload has no string or integer at the hook's session_pointer",
            ),
            SessionError::Invalid => refuse(
                StatusCode::BAD_REQUEST,
                -2,
                "bad_session",
                "the value at the hook's session_pointer makes no valid session id (1-128 characters without whitespace)",
            ),
        })
    })
}

/// The message the agent gets: the hook's template (validated at load) filled from the payload.
fn message(hook: &WebhookConfig, name: &str, payload: &Value) -> Result<String, Box<Answer>> {
    let text = hook
        .template
        .as_deref()
        .unwrap_or(template::DEFAULT_TEMPLATE);
    match Template::parse(text) {
        Ok(template) => Ok(template.render(name, payload)),
        Err(why) => {
            tracing::error!(hook = name, %why, "a webhook's template does not parse");
            Err(Box::new(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                -2,
                "misconfigured",
                "the hook's template is not valid",
            )))
        }
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// An error answer: `{"error": {"code", "message", "data": {"reason"}}}`; `reason` is also the
/// metrics outcome.
fn refuse(status: StatusCode, code: i64, reason: &'static str, message: &str) -> Answer {
    let body =
        json!({ "error": { "code": code, "message": message, "data": { "reason": reason } } });
    (reply(status, &body), reason)
}

fn too_large(hook: &WebhookConfig) -> Answer {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        -2,
        "too_large",
        &format!(
            "the body is larger than this hook's max_body_bytes ({} bytes)",
            hook.max_body_bytes
        ),
    )
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `wait=true` (or `1`, or a bare `wait`) in the query string.
fn wants_wait(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| matches!(pair, "wait" | "wait=true" | "wait=1"))
}

enum BodyError {
    TooLarge,
    Timeout,
    Cut,
}

impl BodyError {
    fn answer(self, hook: &WebhookConfig) -> Answer {
        match self {
            Self::TooLarge => too_large(hook),
            Self::Timeout => refuse(
                StatusCode::REQUEST_TIMEOUT,
                -2,
                "body_timeout",
                "the body did not arrive in time; send it at once after the head",
            ),
            Self::Cut => refuse(
                StatusCode::BAD_REQUEST,
                -2,
                "bad_body",
                "the body could not be read",
            ),
        }
    }
}

/// The body, refused as soon as it passes `limit` bytes (whatever `Content-Length` said).
async fn read_bounded<S, B>(body: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| BodyError::Cut)?;
            if out.len().saturating_add(chunk.remaining()) > limit {
                return Err(BodyError::TooLarge);
            }
            out.put(chunk);
        }
        Ok(())
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| BodyError::Timeout)??;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_read_from_the_query() {
        assert!(wants_wait("wait=true"));
        assert!(wants_wait("x=1&wait=1"));
        assert!(wants_wait("wait"));
        assert!(!wants_wait("wait=false"));
        assert!(!wants_wait(""));
        assert!(!wants_wait("nowait=true"));
    }
}
