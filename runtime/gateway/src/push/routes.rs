//! `GET /webchat/push/public-key`, `GET|POST|DELETE /webchat/push/subscriptions`: behind the
//! gateway token like `/api/*` (reading needs the `read` scope, registering and removing the
//! `chat` scope, and a token limited to some sessions may only touch subscriptions of those).
//! Bodies are JSON of at most [`MAX_BODY_BYTES`]; errors are `{"error": {code, message, data}}`
//! with -1 for a body that is not JSON and -2 (`data.path` naming the field) for a wrong one.

use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use flynn_protocol::ErrorCode;
use flynn_protocol::types::Scope;
use flynn_protocol::wire::RpcError;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::subscriptions::{self, SubscribeBody, UnsubscribeBody};
use crate::auth::Identity;
use crate::gateway::Gateway;
use crate::http_auth::{Peer, http_identity};

/// The largest request body (a subscription is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 8 * 1024;

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

fn error(status: StatusCode, error: RpcError) -> Response {
    reply(status, json!({ "error": error }))
}

fn invalid(e: subscriptions::Invalid) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        RpcError::invalid(e.path, e.message),
    )
}

fn internal(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "{what}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        RpcError::internal(format!("{what}: {e}")),
    )
}

/// The four routes.
pub fn routes(gateway: Arc<Gateway>) -> warp::filters::BoxedFilter<(Response,)> {
    let context = warp::header::headers_cloned()
        .and(warp::ext::optional::<Peer>())
        .and(warp::any().map(move || gateway.clone()));
    let public_key = warp::get()
        .and(warp::path!("webchat" / "push" / "public-key"))
        .and(context.clone())
        .then(
            |headers: http::HeaderMap, peer: Option<Peer>, gateway: Arc<Gateway>| async move {
                match http_identity(&gateway, &headers, peer, Scope::Read) {
                    Ok(_) => public_key(&gateway).await,
                    Err(denied) => *denied,
                }
            },
        );
    let subscriptions = warp::path!("webchat" / "push" / "subscriptions");
    let count = warp::get().and(subscriptions).and(context.clone()).then(
        |headers: http::HeaderMap, peer: Option<Peer>, gateway: Arc<Gateway>| async move {
            match http_identity(&gateway, &headers, peer, Scope::Read) {
                Ok(_) => match counts(&gateway).await {
                    Ok(counts) => reply(StatusCode::OK, counts),
                    Err(denied) => denied,
                },
                Err(denied) => *denied,
            }
        },
    );
    let subscribe = warp::post()
        .and(subscriptions)
        .and(context.clone())
        .and(warp::body::stream())
        .then(
            |headers: http::HeaderMap, peer: Option<Peer>, gateway: Arc<Gateway>, body| async move {
                match http_identity(&gateway, &headers, peer, Scope::Chat) {
                    Ok(identity) => subscribe(&gateway, &identity, body).await,
                    Err(denied) => *denied,
                }
            },
        );
    let unsubscribe = warp::delete()
        .and(subscriptions)
        .and(context)
        .and(warp::body::stream())
        .then(
            |headers: http::HeaderMap, peer: Option<Peer>, gateway: Arc<Gateway>, body| async move {
                match http_identity(&gateway, &headers, peer, Scope::Chat) {
                    Ok(identity) => unsubscribe(&gateway, &identity, body).await,
                    Err(denied) => *denied,
                }
            },
        );
    public_key
        .or(count)
        .unify()
        .or(subscribe)
        .unify()
        .or(unsubscribe)
        .unify()
        .boxed()
}

async fn public_key(gateway: &Gateway) -> Response {
    let config = gateway.config();
    if !config.push.enabled {
        return reply(
            StatusCode::OK,
            json!({ "enabled": false, "configured": false, "publicKey": null, "keySource": null, "subject": null }),
        );
    }
    match gateway.push.vapid_key(&config).await {
        Ok((origin, key)) => reply(
            StatusCode::OK,
            json!({
                "enabled": true,
                "configured": true,
                "publicKey": key.public_key(),
                "keySource": origin.kind(),
                "subject": config.push.subject,
            }),
        ),
        Err(e) => internal("the Web Push VAPID key is not usable", e),
    }
}

/// `{enabled, count, cap}`.
async fn counts(gateway: &Gateway) -> Result<serde_json::Value, Response> {
    let config = gateway.config();
    let count = gateway
        .store
        .push_subscription_count()
        .await
        .map_err(|e| internal("cannot count the push subscriptions", e))?;
    Ok(json!({
        "enabled": config.push.enabled,
        "count": count,
        "cap": config.push.max_subscriptions,
    }))
}

async fn subscribe<S, B>(gateway: &Gateway, identity: &Identity, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let config = gateway.config();
    if !config.push.enabled {
        return error(
            StatusCode::CONFLICT,
            RpcError::invalid(
                "push.enabled",
                "Web Push is off on this gateway (push.enabled = false); ask its operator to turn it on",
            ),
        );
    }
    let subscription = match accepted_subscription(gateway, &config, identity, body).await {
        Ok(subscription) => subscription,
        Err(denied) => return denied,
    };
    let session_id = subscription.session_id.clone();
    let status =
        match store_subscription(gateway, subscription, config.push.max_subscriptions).await {
            Ok(status) => status,
            Err(denied) => return denied,
        };
    match counts(gateway).await {
        Ok(mut body) => {
            body["created"] = (status == StatusCode::CREATED).into();
            body["sessionId"] = session_id.into();
            reply(status, body)
        }
        Err(denied) => denied,
    }
}

/// The subscription in `body` once it is well formed, its session is the identity's to touch
/// and the VAPID key is usable; else the response that refuses it.
async fn accepted_subscription<S, B>(
    gateway: &Gateway,
    config: &crate::Config,
    identity: &Identity,
    body: S,
) -> Result<subscriptions::Subscription, Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let body: SubscribeBody = read_json(body).await?;
    let subscription = body
        .check(config.push.allow_insecure_loopback)
        .map_err(invalid)?;
    if !identity.session_allowed(&subscription.session_id) {
        return Err(error(
            StatusCode::FORBIDDEN,
            RpcError::session_not_allowed(
                "POST /webchat/push/subscriptions",
                "sessionId",
                &subscription.session_id,
            ),
        ));
    }
    // A limited token may not take over another session's subscription by re-registering it.
    check_stored_session(
        gateway,
        identity,
        subscription.endpoint.as_str(),
        "POST /webchat/push/subscriptions",
    )
    .await?;
    // A key problem is the operator's to fix; say so now rather than at the first turn.
    if let Err(e) = gateway.push.vapid_key(config).await {
        return Err(internal("the Web Push VAPID key is not usable", e));
    }
    Ok(subscription)
}

/// Stores (or updates) the subscription under the cap: 201 when created, 200 when updated,
/// else the response that refuses it.
async fn store_subscription(
    gateway: &Gateway,
    subscription: subscriptions::Subscription,
    cap: u64,
) -> Result<StatusCode, Response> {
    let now = crate::gateway::now_ms();
    let record = flynn_store::PushSubscriptionRecord {
        endpoint: subscription.endpoint.to_string(),
        session_id: subscription.session_id,
        p256dh: subscription.p256dh,
        auth: subscription.auth,
        expiration_ms: subscription.expiration_ms,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let outcome = gateway
        .store
        .upsert_push_subscription(record, cap)
        .await
        .map_err(|e| internal("cannot store the push subscription", e))?;
    match outcome {
        flynn_store::PushUpsert::Created => Ok(StatusCode::CREATED),
        flynn_store::PushUpsert::Updated => Ok(StatusCode::OK),
        flynn_store::PushUpsert::Full { count } => Err(error(
            StatusCode::CONFLICT,
            RpcError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{count} push subscriptions are stored and push.max_subscriptions is {cap}; remove unused ones (DELETE /webchat/push/subscriptions) or raise the cap"
                ),
            )
            .with_data(json!({ "path": "endpoint", "count": count, "cap": cap })),
        )),
    }
}

async fn unsubscribe<S, B>(gateway: &Gateway, identity: &Identity, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let body: UnsubscribeBody = match read_json(body).await {
        Ok(body) => body,
        Err(denied) => return denied,
    };
    let Some(endpoint) = body.endpoint.filter(|e| !e.is_empty()) else {
        return invalid(subscriptions::Invalid {
            path: "endpoint",
            message: "endpoint is missing; send {\"endpoint\": <the subscription's endpoint>}"
                .into(),
        });
    };
    // Stored endpoints are normalized URLs: look up the same form.
    let endpoint = reqwest::Url::parse(&endpoint).map_or(endpoint, |u| u.to_string());
    if let Err(denied) = check_stored_session(
        gateway,
        identity,
        &endpoint,
        "DELETE /webchat/push/subscriptions",
    )
    .await
    {
        return denied;
    }
    let removed = match gateway.store.delete_push_subscription(&endpoint).await {
        Ok(removed) => removed,
        Err(e) => return internal("cannot delete the push subscription", e),
    };
    match counts(gateway).await {
        Ok(mut body) => {
            body["removed"] = removed.into();
            reply(StatusCode::OK, body)
        }
        Err(denied) => denied,
    }
}

/// Refuses (403) a token limited to some sessions when `endpoint` is stored for another one.
async fn check_stored_session(
    gateway: &Gateway,
    identity: &Identity,
    endpoint: &str,
    route: &str,
) -> Result<(), Response> {
    if !identity.is_session_limited() {
        return Ok(());
    }
    match gateway.store.push_subscription(endpoint).await {
        Ok(Some(stored)) if !identity.session_allowed(&stored.session_id) => Err(error(
            StatusCode::FORBIDDEN,
            RpcError::session_not_allowed(route, "endpoint", &stored.session_id),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(internal("cannot read the push subscription", e)),
    }
}

/// Reads at most [`MAX_BODY_BYTES`] of body and parses it as JSON.
async fn read_json<T, S, B>(body: S) -> Result<T, Response>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                RpcError::invalid("body", format!("the request body could not be read: {e}")),
            )
        })?;
        if bytes.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                RpcError::invalid(
                    "body",
                    format!(
                        "the body is larger than {MAX_BODY_BYTES} bytes; send one subscription"
                    ),
                ),
            ));
        }
        bytes.put(chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let (code, path) = if e.is_data() {
            (ErrorCode::InvalidRequest, "body")
        } else {
            (ErrorCode::ParseError, "body")
        };
        error(
            StatusCode::BAD_REQUEST,
            RpcError::new(code, format!("the body is not the expected JSON: {e}"))
                .with_data(json!({ "path": path })),
        )
    })
}
