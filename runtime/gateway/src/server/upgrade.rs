//! The WebSocket upgrade: the handshake's checks, authentication and the connection slot, the
//! 101 answer, and the upgraded stream handed to tokio-tungstenite with our `WebSocketConfig`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{debug, warn};

use super::activity::WatchedStream;
use super::response::{Body, full, json_error};
use crate::auth::{self, AuthError};
use crate::config::ServerConfig;
use crate::connection::{self, ConnectionSlot, Reserve};
use crate::gateway::Gateway;
use crate::hosts::AllowedHosts;

/// The tungstenite settings for every connection.
pub fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        // 1 KiB: the read buffer is the largest per-connection item once the rest is trimmed,
        // and it keeps its size while the connection idles (BENCHMARKS.md, findings 4 and 24).
        // 16 pipelined requests still fit one read, and each read zero-fills less of it; larger
        // frames are read in several passes.
        .read_buffer_size(1024)
        // Frames are fed and flushed once per wakeup; a 16 KiB buffer lets that flush go out as
        // one write. With 0, every frame is its own syscall (BENCHMARKS.md, finding 1).
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max_frame_bytes.saturating_mul(2).max(64 * 1024))
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

pub(super) fn is_websocket_upgrade<B>(request: &Request<B>) -> bool {
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

/// Answers a WebSocket upgrade request: refused over HTTP, or 101 with the connection
/// served (or told why it is refused) once hyper hands it over.
pub(super) fn upgrade(
    gateway: Arc<Gateway>,
    hosts: &AllowedHosts,
    mut request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let config = gateway.config();
    let server = &config.server;
    let key = match check_handshake(hosts, &server.allowed_origins, &request, peer) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    let admission = match admit(&gateway, server, &request, peer) {
        Ok(admission) => admission,
        Err(refused) => return *refused,
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
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(websocket(gateway, on_upgrade, peer, admission, max_frame));
    response
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// The upgrade request's own checks: its origin (browsers send one; a page from elsewhere must
/// not drive a local gateway), its key, version 13, and the subprotocol offer. The key, or the
/// answer refusing the upgrade.
fn check_handshake(
    hosts: &AllowedHosts,
    allowed_origins: &[String],
    request: &Request<Incoming>,
    peer: SocketAddr,
) -> Result<header::HeaderValue, Box<Response<Body>>> {
    // Clients that are not browsers send no `Origin` and pass. Checked against the allow-list,
    // never against the request's own Host (which a rebinding attacker controls).
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !hosts.allows_origin(&origin, allowed_origins) {
            let e = AuthError::Origin(origin);
            warn!(%peer, error = %e, "websocket refused");
            let refused = json_error(StatusCode::FORBIDDEN, e.code().code(), &e.to_string());
            return Err(Box::new(refused));
        }
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        let refused = json_error(StatusCode::BAD_REQUEST, -2, "missing Sec-WebSocket-Key");
        return Err(Box::new(refused));
    };
    if request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        // RFC 6455 section 4.4: 426 with the versions the server speaks.
        let mut response = json_error(
            StatusCode::UPGRADE_REQUIRED,
            -2,
            "unsupported WebSocket version: use 13",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            header::HeaderValue::from_static("13"),
        );
        return Err(Box::new(response));
    }
    if let Err(message) = auth::check_subprotocol_offer(request.headers()) {
        return Err(Box::new(json_error(StatusCode::BAD_REQUEST, -2, &message)));
    }
    Ok(key)
}

/// What an upgraded connection becomes.
enum Admission {
    /// Served, in the slot reserved for it.
    Authenticated(auth::Identity, ConnectionSlot),
    /// Told why (an error frame), then closed with 1008.
    Refused(AuthError),
}

/// Authenticates the upgrade request. Rate-limited addresses and a full gateway are answered
/// over HTTP (429, 503); other failures upgrade, to be told why on the WebSocket.
fn admit(
    gateway: &Gateway,
    server: &ServerConfig,
    request: &Request<Incoming>,
    peer: SocketAddr,
) -> Result<Admission, Box<Response<Body>>> {
    let identity = match auth::authenticate(server, &gateway.limiter, request.headers(), peer) {
        Ok(identity) => identity,
        Err(e) => {
            crate::metrics::get().auth_failure("websocket");
            if let AuthError::RateLimited(_) = e {
                let refused = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    e.code().code(),
                    &e.to_string(),
                );
                return Err(Box::new(refused));
            }
            return Ok(Admission::Refused(e));
        }
    };
    // Only authenticated connections take a slot: refused ones must not crowd out real clients.
    match gateway.connections.reserve(server.max_connections) {
        Some(slot) => Ok(Admission::Authenticated(identity, slot)),
        None => Err(Box::new(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the gateway is at server.max_connections; retry later",
        ))),
    }
}

/// An upgraded connection, once hyper hands it over: served, or refused on the WebSocket.
async fn websocket(
    gateway: Arc<Gateway>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    peer: SocketAddr,
    admission: Admission,
    max_frame: usize,
) {
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
    let parts = match upgraded.downcast::<TokioIo<WatchedStream>>() {
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
    let stream = gateway.inbound.stream(parts.io.into_inner().inner);
    let config = Some(websocket_config(max_frame));
    // Boxed: the stream is moved through several async layers, each of which would keep a
    // slot for it in its future (BENCHMARKS.md, finding 3).
    let ws = Box::new(match early {
        None => WebSocketStream::from_raw_socket(stream, Role::Server, config).await,
        Some(early) => {
            WebSocketStream::from_partially_read(stream, early, Role::Server, config).await
        }
    });
    match admission {
        Admission::Authenticated(identity, slot) => {
            let settings =
                connection::Settings::new(&gateway.config().server, gateway.shutdown.clone());
            connection::run(gateway, ws, peer, identity, slot, settings).await;
        }
        Admission::Refused(e) => connection::refuse(ws, peer, e).await,
    }
}
