//! Authentication of HTTP requests on the gateway's port (`server.auth_http`, scopes), shared by
//! every route module. Its own module so that route modules (`webhooks`, `push`, `channels`)
//! do not reach into `http_routes`, which mounts them all. Re-exported from `http_routes`.

use std::net::SocketAddr;

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
