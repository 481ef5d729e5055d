//! One port for everything: hyper serves each TCP connection; a WebSocket upgrade on `/` is
//! checked (origin, auth, connection limit) and handed to tokio-tungstenite with our
//! `WebSocketConfig` (small read buffer, frame limit), everything else goes to the warp routes.
//!
//! warp's own `ws()` filter cannot set tungstenite's buffer sizes, which costs ~128 KiB per idle
//! connection and a fifth of the throughput, hence the upgrade is done here.

mod activity;
mod response;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::admission::{AcceptBackoff, Pending};
use crate::gateway::Gateway;
use crate::hosts::AllowedHosts;
use crate::http_routes;
use crate::tls::Transport;
use activity::{Activity, WatchedStream};
use response::Body;
pub use response::json_error;
pub use upgrade::websocket_config;
use upgrade::{is_websocket_upgrade, upgrade};

/// Accepts connections until the gateway shuts down.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener) {
    let bound_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let routes = http_routes::routes(gateway.clone());
    let warp_service = warp::service(routes);
    let shutdown = gateway.shutdown.clone();
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: wait (growing) instead of spinning, one warning per
                    // interval instead of one per attempt.
                    let delay = backoff.failed(&e);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            },
        };
        backoff.succeeded();
        let _ = stream.set_nodelay(true);
        let cap = gateway.config().server.max_unauthenticated_connections;
        let pending = gateway.unauthenticated.enter(cap);
        tokio::spawn(serve_http(
            gateway.clone(),
            warp_service.clone(),
            stream,
            peer,
            bound_port,
            pending,
        ));
    }
    info!("stopped accepting connections");
}

/// One TCP connection's HTTP side: requests until it upgrades to a WebSocket, closes, idles
/// past `server.idle_timeout_ms`, misses `server.handshake_timeout_ms`, or is evicted to make
/// room for a newer unauthenticated connection.
async fn serve_http<S>(
    gateway: Arc<Gateway>,
    warp_service: S,
    stream: TcpStream,
    peer: SocketAddr,
    bound_port: u16,
    pending: Pending,
) where
    S: tower_service::Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let server = gateway.config().server.clone();
    let handshake = Duration::from_millis(server.handshake_timeout_ms);
    let Some(stream) = secure(&gateway, stream, peer, handshake, &pending).await else {
        return;
    };
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = activity.begin();
            let answer = answer(
                gateway.clone(),
                warp_service.clone(),
                request,
                peer,
                bound_port,
            );
            async move {
                let _busy = busy;
                answer.await
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(server.header_read_timeout_ms))
        // Request heads only: hyper's default (about 400 KiB) times the unauthenticated cap is
        // memory a client can hold without credentials.
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let accepted = tokio::time::Instant::now();
    let idle = Duration::from_millis(server.idle_timeout_ms);
    loop {
        let deadline = activity.deadline(accepted, handshake, idle);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    debug!(%peer, error = %e, "http connection ended with an error");
                }
                return;
            }
            _ = pending.evicted() => {
                debug!(%peer, "closed to make room for a newer unauthenticated connection");
                return;
            }
            _ = activity.answer_ended.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                if activity.expired(accepted, handshake, idle) {
                    debug!(%peer, "closed: handshake or keep-alive idle timeout");
                    return;
                }
            }
        }
    }
}

/// With `[server.tls]`, TLS first (bounded by the handshake time); plain HTTP gets a 400.
/// `None` when the connection ended before TLS was established.
async fn secure(
    gateway: &Gateway,
    stream: TcpStream,
    peer: SocketAddr,
    handshake: Duration,
    pending: &Pending,
) -> Option<Transport> {
    let Some(acceptor) = gateway.tls.current() else {
        return Some(Transport::Plain(stream));
    };
    tokio::select! {
        accepted = crate::tls::accept(acceptor, stream, handshake) => match accepted {
            Ok(stream) => Some(stream),
            Err(why) => {
                debug!(%peer, %why, "connection closed before TLS was established");
                None
            }
        },
        _ = pending.evicted() => None,
    }
}

/// One HTTP request: the host is checked, a WebSocket upgrade on `/` is answered here, and
/// everything else goes to the warp routes.
async fn answer<S>(
    gateway: Arc<Gateway>,
    mut warp_service: S,
    mut request: Request<Incoming>,
    peer: SocketAddr,
    bound_port: u16,
) -> Result<Response<Body>, Infallible>
where
    S: tower_service::Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        >,
{
    let config = gateway.config();
    let hosts = AllowedHosts::new(config.server.bind, &config.server.allowed_hosts, bound_port);
    if let Err(refused) = check_host(&hosts, &request, peer) {
        return Ok(*refused);
    }
    if is_websocket_upgrade(&request) && request.uri().path() == "/" {
        return Ok(upgrade(gateway, &hosts, request, peer));
    }
    request.extensions_mut().insert(http_routes::Peer(peer));
    let response = match warp_service.call(request).await {
        Ok(response) => response.map(|b| b.map_err(|e| e.into()).boxed()),
        Err(never) => match never {},
    };
    Ok(response)
}

/// Largest request head (request line and headers) read from a client.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Every request must name a host this gateway answers to (DNS rebinding): the request URI's
/// authority when it has one (absolute form), else the `Host` header.
fn check_host<B>(
    hosts: &AllowedHosts,
    request: &Request<B>,
    peer: SocketAddr,
) -> Result<(), Box<Response<Body>>> {
    let named = match request.uri().authority() {
        Some(authority) => Some(authority.as_str().to_owned()),
        None => request
            .headers()
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
    };
    let Some(named) = named else {
        return Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            -2,
            "the request has no Host header; HTTP/1.1 requires one",
        )));
    };
    if hosts.allows_host(&named) {
        return Ok(());
    }
    warn!(%peer, host = %named, "request for a host this gateway does not serve refused");
    Err(Box::new(json_error(
        StatusCode::MISDIRECTED_REQUEST,
        flynn_protocol::ErrorCode::AuthFailed.code(),
        &format!(
            "host `{named}` is not served by this gateway (DNS rebinding protection); if clients reach it by this name, add it to server.allowed_hosts"
        ),
    )))
}
