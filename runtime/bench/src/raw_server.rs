//! The baseline: a minimal tokio-tungstenite server that answers `system.info` the way the
//! gateway does: parse the JSON frame, build the reply, serialize it, with the gateway's own
//! `WebSocketConfig` (read and write buffer sizes, limits) and its write discipline (replies fed
//! into the sink, one flush per batch of ready frames). Whatever the gateway costs beyond this is
//! the price of its routing, auth and state.
//!
//! The reply is, by default, the gateway's own ([`RawReply::Gateway`]): the protocol document's
//! `{version, uptime, connections}` plus this gateway's `connectionId` and `sessionId`, in the
//! gateway's member order, so both servers put the same bytes on the wire.
//! [`RawReply::Minimal`] answers with the document's three members only (about 65 bytes
//! against 140): the comparison then also charges the gateway for its longer reply.
//!
//! `write_buffer_size` is the gateway's unless `--raw-write-buffer` says otherwise (tungstenite
//! writes a frame to the socket as soon as its buffer holds more than that; 0 makes every frame
//! its own `send`).

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use crate::BenchError;

/// Frames taken from the socket's buffer before one flush, as in the gateway.
const BATCH: usize = 64;

/// What the raw server's `system.info` reply holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RawReply {
    /// The same members as the gateway's reply (the default comparison).
    Gateway,
    /// The protocol document's `{version, uptime, connections}` only.
    Minimal,
}

impl RawReply {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Minimal => "minimal",
        }
    }
}

/// How the raw server is set up.
#[derive(Debug, Clone, Copy)]
pub struct RawOptions {
    /// tungstenite's `write_buffer_size`.
    pub write_buffer: usize,
    /// tungstenite's `read_buffer_size`.
    pub read_buffer: usize,
    pub reply: RawReply,
}

impl Default for RawOptions {
    fn default() -> Self {
        Self {
            write_buffer: gateway_write_buffer(),
            read_buffer: gateway_read_buffer(),
            reply: RawReply::Gateway,
        }
    }
}

/// The gateway's own `read_buffer_size`.
pub fn gateway_read_buffer() -> usize {
    let max_frame_bytes = flynn_gateway::Config::default().server.max_frame_bytes;
    flynn_gateway::server::websocket_config(max_frame_bytes).read_buffer_size
}

/// The gateway's own `write_buffer_size`.
pub fn gateway_write_buffer() -> usize {
    let max_frame_bytes = flynn_gateway::Config::default().server.max_frame_bytes;
    flynn_gateway::server::websocket_config(max_frame_bytes).write_buffer_size
}

struct State {
    started: Instant,
    connections: AtomicUsize,
    max_frame_bytes: usize,
    options: RawOptions,
}

/// A raw server running on this runtime.
pub struct RawServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawServer {
    /// Binds 127.0.0.1 on a free port and starts accepting.
    pub async fn start(options: RawOptions) -> Result<Self, BenchError> {
        let max_frame_bytes = flynn_gateway::Config::default().server.max_frame_bytes;
        let limit = flynn_gateway::server::websocket_config(max_frame_bytes).max_write_buffer_size;
        let write_buffer = options.write_buffer;
        if write_buffer >= limit {
            return Err(BenchError::Settings(format!(
                "the raw server's write buffer ({write_buffer} bytes) must be below tungstenite's max_write_buffer_size ({limit})"
            )));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| BenchError::io("cannot bind 127.0.0.1:0 for the raw server", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::io("cannot read the raw server's address", e))?;
        let state = Arc::new(State {
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            max_frame_bytes,
            options,
        });
        let task = tokio::spawn(accept_loop(listener, state));
        Ok(Self { addr, task })
    }

    /// Stops accepting; open connections end with the runtime.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, state.clone()));
            }
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning (as the gateway does).
                warn!(error = %e, "raw server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Decrements the connection count however the connection ends.
struct Counted(Arc<State>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let config = flynn_gateway::server::websocket_config(state.max_frame_bytes)
        .write_buffer_size(state.options.write_buffer)
        .read_buffer_size(state.options.read_buffer);
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(ws) => ws,
        Err(e) => {
            debug!(error = %e, "raw server: handshake failed");
            return;
        }
    };
    state.connections.fetch_add(1, Ordering::AcqRel);
    let _counted = Counted(state.clone());
    // Named like the gateway's: a v4 UUID without dashes, and its per-connection session.
    let connection_id = uuid::Uuid::new_v4().simple().to_string();
    let peer = Peer {
        session_id: format!("ws:{connection_id}"),
        connection_id,
    };
    serve(ws, &state, &peer).await;
}

/// The calling connection, as the gateway's reply names it.
struct Peer {
    connection_id: String,
    session_id: String,
}

async fn serve(mut ws: WebSocketStream<TcpStream>, state: &State, peer: &Peer) {
    while let Some(Ok(first)) = ws.next().await {
        if !answer(&mut ws, state, peer, first).await {
            return;
        }
        for _ in 0..BATCH {
            match ws.next().now_or_never() {
                Some(Some(Ok(message))) => {
                    if !answer(&mut ws, state, peer, message).await {
                        return;
                    }
                }
                Some(_) => return,
                None => break,
            }
        }
        // Also sends tungstenite's queued pong / close replies.
        if ws.flush().await.is_err() {
            return;
        }
    }
}

/// Feeds the reply to one message; false when the socket is broken.
async fn answer(
    ws: &mut WebSocketStream<TcpStream>,
    state: &State,
    peer: &Peer,
    message: Message,
) -> bool {
    match message {
        Message::Text(text) => {
            let reply = reply_to(text.as_str(), state, peer);
            ws.feed(Message::text(reply)).await.is_ok()
        }
        _ => true,
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: Cow<'a, str>,
}

#[derive(Serialize)]
struct Reply<'a> {
    id: &'a RawValue,
    result: Info<'a>,
}

/// The gateway's `SystemInfoResult`, member for member and in its order; the two extension
/// members are left out for [`RawReply::Minimal`].
#[derive(Serialize)]
struct Info<'a> {
    #[serde(rename = "connectionId", skip_serializing_if = "Option::is_none")]
    connection_id: Option<&'a str>,
    connections: u64,
    #[serde(rename = "sessionId", skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    uptime: u64,
    version: &'static str,
}

fn reply_to(text: &str, state: &State, peer: &Peer) -> String {
    let frame: Frame<'_> = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => return error(None, -1, &format!("invalid frame: {e}")),
    };
    if frame.method != "system.info" {
        return error(
            Some(frame.id),
            -3,
            &format!(
                "the raw server only knows system.info, not {}",
                frame.method
            ),
        );
    }
    let full = state.options.reply == RawReply::Gateway;
    let reply = Reply {
        id: frame.id,
        result: Info {
            connection_id: full.then_some(peer.connection_id.as_str()),
            connections: state.connections.load(Ordering::Acquire) as u64,
            session_id: full.then_some(peer.session_id.as_str()),
            uptime: state.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
        },
    };
    serde_json::to_string(&reply)
        .unwrap_or_else(|e| error(Some(frame.id), 5, &format!("cannot encode: {e}")))
}

fn error(id: Option<&RawValue>, code: i64, message: &str) -> String {
    serde_json::json!({
        "id": id.map(|id| id.get()).and_then(|id| serde_json::from_str::<serde_json::Value>(id).ok()),
        "error": { "code": code, "message": message },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(reply: RawReply) -> State {
        State {
            started: Instant::now(),
            connections: AtomicUsize::new(3),
            max_frame_bytes: 1024,
            options: RawOptions {
                write_buffer: 0,
                read_buffer: 2048,
                reply,
            },
        }
    }

    fn peer() -> Peer {
        Peer {
            connection_id: "c0ffee".into(),
            session_id: "ws:c0ffee".into(),
        }
    }

    #[test]
    fn answers_system_info_with_the_id() {
        let reply = reply_to(
            r#"{"id":42,"method":"system.info"}"#,
            &state(RawReply::Minimal),
            &peer(),
        );
        assert_eq!(
            reply,
            format!(
                r#"{{"id":42,"result":{{"connections":3,"uptime":0,"version":"{}"}}}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    /// The default reply has exactly the members of the gateway's, in the same order.
    #[test]
    fn the_default_reply_is_shaped_like_the_gateways() {
        let reply = reply_to(
            r#"{"id":42,"method":"system.info"}"#,
            &state(RawReply::Gateway),
            &peer(),
        );
        let gateways = flynn_protocol::types::SystemInfoResult {
            connection_id: Some("c0ffee".into()),
            connections: 3,
            session_id: Some("ws:c0ffee".into()),
            uptime: 0,
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let expected = flynn_protocol::wire::encode_reply(
            &flynn_protocol::wire::RequestId::Number(42),
            false,
            &gateways,
        );
        assert_eq!(Ok(reply), expected);
    }

    #[test]
    fn rejects_other_methods_and_bad_json() {
        let reply = reply_to(
            r#"{"id":"a","method":"sessions.list"}"#,
            &state(RawReply::Gateway),
            &peer(),
        );
        assert!(
            reply.contains(r#""id":"a""#) && reply.contains("-3"),
            "{reply}"
        );
        let reply = reply_to("{nope", &state(RawReply::Gateway), &peer());
        assert!(
            reply.contains(r#""id":null"#) && reply.contains("-1"),
            "{reply}"
        );
    }
}
