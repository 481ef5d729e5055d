//! HTTP routes on the gateway's port: `GET /health` and `GET /api/health` (same handler, behind
//! the token when `server.auth_http`), and the dashboard's static files (`crate::dashboard`).
//!
//! The dashboard's static files are served without the token: a browser cannot attach a bearer
//! header to a page navigation, and the files hold no data (everything the page shows comes over
//! the authenticated WebSocket). This is written down in the spec's x-http section.

use std::sync::Arc;

use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

use crate::gateway::Gateway;
pub use crate::http_auth::Peer;
use crate::http_auth::check_http_auth;
// The auth helpers used to live here; route modules on other branches still name them through
// this path. New code uses `crate::http_auth` (naming `http_routes`, which mounts every route
// module, from a route module makes an import cycle).
#[allow(unused_imports)]
pub(crate) use crate::http_auth::{check_http_scope, http_identity, require_http_scope};

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
            let text = crate::metrics::get().render(
                gateway.connections.count(),
                &gateway.lanes.queue_depths(),
                gateway.inbound.used_bytes(),
            );
            warp::reply::with_header(
                text,
                http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )
            .into_response()
        })
        .boxed()
}
