//! One port for everything: hyper serves each TCP connection; a WebSocket upgrade on `/` is
//! checked (origin, auth, connection limit) and handed to tokio-tungstenite with our
//! `WebSocketConfig` (small read buffer, frame limit), everything else goes to the warp routes.
//!
//! warp's own `ws()` filter cannot set tungstenite's buffer sizes, which costs ~128 KiB per idle
//! connection and a fifth of the throughput, hence the upgrade is done here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{debug, info, warn};

use crate::admission::{AcceptBackoff, Pending};
use crate::auth::{self, AuthError};
use crate::config::ServerConfig;
use crate::connection::{self, ConnectionSlot, Reserve};
use crate::gateway::Gateway;
use crate::hosts::AllowedHosts;
use crate::http_routes;
use crate::tls::Transport;

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

/// What an HTTP connection is doing, for its timeouts: requests being answered, whether one
/// was answered yet, and whether bytes arrived since the last answer (a next request being read,
/// which `header_read_timeout` bounds).
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    answered: AtomicBool,
    read_since_answer: AtomicBool,
    idle_since: Mutex<tokio::time::Instant>,
    /// Notified when an answer ends, so the watchdog re-arms for the idle time.
    answer_ended: tokio::sync::Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            read_since_answer: AtomicBool::new(false),
            idle_since: Mutex::new(tokio::time::Instant::now()),
            answer_ended: tokio::sync::Notify::new(),
        }
    }
}

/// A request being answered; dropping it marks the answer.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        if let Ok(mut since) = a.idle_since.lock() {
            *since = tokio::time::Instant::now();
        }
        a.read_since_answer.store(false, Ordering::Release);
        a.answered.store(true, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.answer_ended.notify_one();
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When to look again.
    fn deadline(
        &self,
        accepted: tokio::time::Instant,
        handshake: Duration,
        idle: Duration,
    ) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0
            || self.read_since_answer.load(Ordering::Acquire)
        {
            return now + idle.min(handshake);
        }
        if !self.answered.load(Ordering::Acquire) {
            return accepted + handshake;
        }
        let since = self
            .idle_since
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner());
        since + idle
    }

    /// Whether the connection has run out of time: no answer within the handshake time, or
    /// idle (nothing in flight, nothing arriving) for the idle time.
    fn expired(&self, accepted: tokio::time::Instant, handshake: Duration, idle: Duration) -> bool {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        if !self.answered.load(Ordering::Acquire) {
            return now >= accepted + handshake;
        }
        if self.read_since_answer.load(Ordering::Acquire) {
            return false;
        }
        let since = self
            .idle_since
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner());
        now >= since + idle
    }
}

/// The TCP stream under hyper, noting when bytes arrive (for the idle timeout).
#[derive(Debug)]
struct WatchedStream {
    inner: Transport,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for WatchedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity
                .read_since_answer
                .store(true, Ordering::Release);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

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
