//! One port for everything: hyper serves each TCP connection; a WebSocket upgrade on `/` is
//! checked (origin, auth, connection limit) and handed to tokio-tungstenite with our
//! `WebSocketConfig` (small read buffer, frame limit), everything else goes to the warp routes.
//!
//! warp's own `ws()` filter cannot set tungstenite's buffer sizes, which costs ~128 KiB per idle
//! connection and a fifth of the throughput, hence the upgrade is done here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tower_service::Service as _;
use tracing::{debug, info, warn};

use crate::auth::{self, AuthError, Identity};
use crate::connection;
use crate::gateway::{Gateway, Reserve};
use crate::http_routes;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON error response shaped like an error frame.
pub fn json_error(status: StatusCode, code: i64, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// The tungstenite settings for every connection.
pub fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        // 2 KiB: the read buffer is the largest per-connection item once the rest is trimmed
        // (BENCHMARKS.md, finding 4); larger frames are read in several passes.
        .read_buffer_size(2 * 1024)
        // Frames are fed and flushed once per wakeup; a 16 KiB buffer lets that flush go out as
        // one write. With 0, every frame is its own syscall (BENCHMARKS.md, finding 1).
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max_frame_bytes.saturating_mul(2).max(64 * 1024))
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// Accepts connections until the gateway shuts down.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener) {
    let routes = http_routes::routes(gateway.clone());
    let warp_service = warp::service(routes);
    let shutdown = gateway.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let warp_service = warp_service.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                let gateway = gateway.clone();
                let mut warp_service = warp_service.clone();
                async move {
                    if is_websocket_upgrade(&request) && request.uri().path() == "/" {
                        Ok::<_, Infallible>(upgrade(gateway, request, peer))
                    } else {
                        request.extensions_mut().insert(http_routes::Peer(peer));
                        let response = match warp_service.call(request).await {
                            Ok(response) => response.map(|b| b.map_err(|e| e.into()).boxed()),
                            Err(never) => match never {},
                        };
                        Ok(response)
                    }
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    info!("stopped accepting connections");
}

fn is_websocket_upgrade<B>(request: &Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

fn upgrade(
    gateway: Arc<Gateway>,
    mut request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let config = gateway.config();
    let server = &config.server;
    if let Err(e) = auth::check_origin(server, request.headers()) {
        warn!(%peer, error = %e, "websocket refused");
        return json_error(StatusCode::FORBIDDEN, e.code().code(), &e.to_string());
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return json_error(StatusCode::BAD_REQUEST, -2, "missing Sec-WebSocket-Key");
    };
    if request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            -2,
            "unsupported WebSocket version: use 13",
        );
    }
    let auth = auth::authenticate(server, &gateway.limiter, request.headers(), peer);
    if let Err(AuthError::RateLimited(wait)) = &auth {
        let e = AuthError::RateLimited(*wait);
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            e.code().code(),
            &e.to_string(),
        );
    }
    // Only authenticated connections take a slot: refused ones must not crowd out real clients.
    let slot = match &auth {
        Ok(_) => match gateway.connections.reserve(server.max_connections) {
            Some(slot) => Some(slot),
            None => {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    5,
                    "the gateway is at server.max_connections; retry later",
                );
            }
        },
        Err(_) => None,
    };
    let offered = auth::offered_subprotocols(request.headers());
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if offered.iter().any(|p| p == auth::SUBPROTOCOL) {
        // Never echo the bearer entry: only the protocol name.
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, auth::SUBPROTOCOL);
    }
    let max_frame = server.max_frame_bytes;
    let tailscale = match &auth {
        Ok(Identity::Tailscale(login)) => Some(login.clone()),
        _ => None,
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(%peer, error = %e, "upgrade failed");
                return;
            }
        };
        // Back to the plain TCP stream: hyper's `Upgraded` reaches it through a boxed trait
        // object and a rewind buffer on every read and write. Bytes hyper read past the
        // handshake (a client that sent its first frame at once) are handed to tungstenite.
        let parts = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => parts,
            Err(_) => {
                warn!(%peer, "upgraded connection is not a TCP stream; closing it");
                return;
            }
        };
        // Copied out and released at once: even when empty, the `Bytes` would keep hyper's whole
        // read buffer (several KiB) alive for as long as the connection lasts.
        let early = (!parts.read_buf.is_empty()).then(|| parts.read_buf.to_vec());
        drop(parts.read_buf);
        let stream = parts.io.into_inner();
        let config = Some(websocket_config(max_frame));
        // Boxed: the stream is moved through several async layers, each of which would keep a
        // slot for it in its future (BENCHMARKS.md, finding 3).
        let ws = Box::new(match early {
            None => WebSocketStream::from_raw_socket(stream, Role::Server, config).await,
            Some(early) => {
                WebSocketStream::from_partially_read(stream, early, Role::Server, config).await
            }
        });
        match (auth, slot) {
            (Ok(_), Some(slot)) => connection::run(gateway, ws, peer, tailscale, slot).await,
            (Err(e), _) => connection::refuse(ws, peer, e).await,
            (Ok(_), None) => {}
        }
    });
    response
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full("")))
}
