//! HTTP routes on the gateway's port: `GET /health` and `GET /api/health` (same handler, behind
//! the token when `server.auth_http`), and the dashboard's static files (`crate::dashboard`).
//!
//! The dashboard's static files are served without the token: a browser cannot attach a bearer
//! header to a page navigation, and the files hold no data (everything the page shows comes over
//! the authenticated WebSocket). This is written down in the spec's x-http section.

use std::net::SocketAddr;
use std::sync::Arc;

use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

use flynn_protocol::types::Scope;

use crate::auth::{self, AuthError};
use crate::gateway::Gateway;

/// The TCP peer, put into each request's extensions by the server before warp sees it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

fn error_reply(status: StatusCode, error: &AuthError) -> warp::reply::Response {
    let body = serde_json::json!({ "error": { "code": error.code().code(), "message": error.to_string() } });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Authenticates an HTTP request when the config asks for it.
pub(crate) fn check_http_auth(
    gateway: &Gateway,
    headers: &http::HeaderMap,
    peer: Option<Peer>,
) -> Result<(), Box<warp::reply::Response>> {
    check_http_scope(gateway, headers, peer, Scope::Read)
}

/// Authenticates an HTTP request when the config asks for it, and checks that its credential
/// holds `needed` (403 with ScopeRequired otherwise).
pub(crate) fn check_http_scope(
    gateway: &Gateway,
    headers: &http::HeaderMap,
    peer: Option<Peer>,
    needed: Scope,
) -> Result<(), Box<warp::reply::Response>> {
    http_identity(gateway, headers, peer, needed).map(|_| ())
}

/// Like [`check_http_scope`], whatever `server.auth_http` says: for routes that need the
/// token whenever one is configured (unsigned webhooks).
pub(crate) fn require_http_scope(
    gateway: &Gateway,
    headers: &http::HeaderMap,
    peer: Option<Peer>,
    needed: Scope,
) -> Result<(), Box<warp::reply::Response>> {
    identify(gateway, headers, peer, needed, true).map(|_| ())
}

/// Like [`check_http_scope`], returning who the request is (for routes that also check the
/// credential's sessions); [`auth::Identity::Open`] when no credentials are needed.
pub(crate) fn http_identity(
    gateway: &Gateway,
    headers: &http::HeaderMap,
    peer: Option<Peer>,
    needed: Scope,
) -> Result<auth::Identity, Box<warp::reply::Response>> {
    identify(gateway, headers, peer, needed, false)
}

/// Who the request is; `always`: check the credential even when `server.auth_http` is off.
fn identify(
    gateway: &Gateway,
    headers: &http::HeaderMap,
    peer: Option<Peer>,
    needed: Scope,
    always: bool,
) -> Result<auth::Identity, Box<warp::reply::Response>> {
    let config = gateway.config();
    if (!always && !config.server.auth_http) || !config.has_credentials() {
        return Ok(auth::Identity::Open);
    }
    let peer = peer.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.0);
    let checked = auth::authenticate(&config.server, &gateway.limiter, headers, peer);
    if checked.is_err() {
        crate::metrics::get().auth_failure("http");
    }
    match checked {
        Ok(identity) if identity.scopes().contains(needed) => Ok(identity),
        Ok(_) => {
            let error = flynn_protocol::wire::RpcError::scope_required(
                "this route",
                flynn_protocol::Scopes::name(needed),
            );
            let body = serde_json::json!({ "error": error });
            Err(Box::new(
                warp::reply::with_status(warp::reply::json(&body), StatusCode::FORBIDDEN)
                    .into_response(),
            ))
        }
        Err(e @ AuthError::RateLimited(_)) => {
            Err(Box::new(error_reply(StatusCode::TOO_MANY_REQUESTS, &e)))
        }
        Err(e) => Err(Box::new(error_reply(StatusCode::UNAUTHORIZED, &e))),
    }
}

/// All HTTP routes.
pub fn routes(gateway: Arc<Gateway>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let with_gateway = {
        let gateway = gateway.clone();
        warp::any().map(move || gateway.clone())
    };
    let health = warp::get()
        .and(
            warp::path("health")
                .or(warp::path("api").and(warp::path("health")))
                .unify(),
        )
        .and(warp::path::end())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(with_gateway)
        .map(
            |headers: http::HeaderMap, peer: Option<Peer>, gateway: Arc<Gateway>| {
                if let Err(denied) = check_http_auth(&gateway, &headers, peer) {
                    return *denied;
                }
                warp::reply::json(&serde_json::json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime": gateway.uptime_seconds(),
                    "connections": gateway.connections.count(),
                    "protocolVersion": flynn_protocol::PROTOCOL_VERSION,
                }))
                .into_response()
            },
        );

    // Operator and integration routes (`crate::metrics`, ...), each checking its own auth.
    let health = health
        .or(metrics_route(gateway.clone()))
        .unify()
        .or(crate::webhooks::route(gateway.clone()))
        .unify()
        .or(crate::push::routes::routes(gateway.clone()))
        .unify()
        .or(crate::channels::routes::routes(gateway.clone()))
        .unify()
        .boxed();
    let server = &gateway.config().server;
    let dashboard = crate::dashboard::routes(server.dashboard, server.dashboard_dir.clone());
    let not_found = warp::any().map(|| {
        let body = serde_json::json!({ "error": { "code": -3, "message": "no such route; the WebSocket endpoint is `/`, health is `/health`" } });
        warp::reply::with_status(warp::reply::json(&body), StatusCode::NOT_FOUND).into_response()
    });
    match dashboard {
        Some(dashboard) => health.or(dashboard).unify().or(not_found).unify().boxed(),
        None => health.or(not_found).unify().boxed(),
    }
}

/// `GET /metrics`, behind the token like `/api/*` (when `server.token` is set and
/// `server.auth_http`).
fn metrics_route(gateway: Arc<Gateway>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("metrics"))
        .and(warp::path::end())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .map(move |headers: http::HeaderMap, peer: Option<Peer>| {
            if let Err(denied) = check_http_auth(&gateway, &headers, peer) {
                return *denied;
            }
            let text = crate::metrics::get()
                .render(gateway.connections.count(), &gateway.lanes.queue_depths());
            warp::reply::with_header(
                text,
                http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )
            .into_response()
        })
        .boxed()
}
