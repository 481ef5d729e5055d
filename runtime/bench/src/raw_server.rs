//! The baseline: a minimal tokio-tungstenite server that answers `system.info` the way the
//! gateway does (parse the JSON frame, build `{"id":…,"result":{version,uptime,connections}}`,
//! serialize), with the gateway's own `WebSocketConfig` (4 KiB read buffer, same limits) and the
//! write discipline the gateway intends (replies fed into the sink, one flush per batch of ready
//! frames). Whatever the gateway costs beyond this is the price of its routing, auth and state.
//!
//! One setting may differ: tungstenite writes a frame to the socket as soon as its write buffer
//! holds more than `write_buffer_size` bytes, so with the gateway's current 0 every fed frame is
//! its own `send` and "flush once per batch" batches nothing. The raw server defaults to
//! [`DEFAULT_WRITE_BUFFER`] so batching really happens; `--raw-write-buffer 0` mirrors the
//! gateway exactly.

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

/// Bytes of replies tungstenite may hold before writing them out (the flush writes the rest).
pub const DEFAULT_WRITE_BUFFER: usize = 16 * 1024;

struct State {
    started: Instant,
    connections: AtomicUsize,
    max_frame_bytes: usize,
    write_buffer: usize,
}

/// A raw server running on this runtime.
pub struct RawServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawServer {
    /// Binds 127.0.0.1 on a free port and starts accepting; `write_buffer` is tungstenite's
    /// `write_buffer_size` (see the module doc).
    pub async fn start(write_buffer: usize) -> Result<Self, BenchError> {
        let max_frame_bytes = flynn_gateway::Config::default().server.max_frame_bytes;
        let limit = flynn_gateway::server::websocket_config(max_frame_bytes).max_write_buffer_size;
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
            write_buffer,
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
        .write_buffer_size(state.write_buffer);
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(ws) => ws,
        Err(e) => {
            debug!(error = %e, "raw server: handshake failed");
            return;
        }
    };
    state.connections.fetch_add(1, Ordering::AcqRel);
    let _counted = Counted(state.clone());
    serve(ws, &state).await;
}

async fn serve(mut ws: WebSocketStream<TcpStream>, state: &State) {
    while let Some(Ok(first)) = ws.next().await {
        if !answer(&mut ws, state, first).await {
            return;
        }
        for _ in 0..BATCH {
            match ws.next().now_or_never() {
                Some(Some(Ok(message))) => {
                    if !answer(&mut ws, state, message).await {
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
async fn answer(ws: &mut WebSocketStream<TcpStream>, state: &State, message: Message) -> bool {
    match message {
        Message::Text(text) => {
            let reply = reply_to(text.as_str(), state);
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
    result: Info,
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    uptime: u64,
    connections: u64,
}

fn reply_to(text: &str, state: &State) -> String {
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
    let reply = Reply {
        id: frame.id,
        result: Info {
            version: env!("CARGO_PKG_VERSION"),
            uptime: state.started.elapsed().as_secs(),
            connections: state.connections.load(Ordering::Acquire) as u64,
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

    fn state() -> State {
        State {
            started: Instant::now(),
            connections: AtomicUsize::new(3),
            max_frame_bytes: 1024,
            write_buffer: 0,
        }
    }

    #[test]
    fn answers_system_info_with_the_id() {
        let reply = reply_to(r#"{"id":42,"method":"system.info"}"#, &state());
        assert!(
            reply.starts_with(r#"{"id":42,"result":{"version":""#),
            "{reply}"
        );
        assert!(
            reply.ends_with(r#""uptime":0,"connections":3}}"#),
            "{reply}"
        );
    }

    #[test]
    fn rejects_other_methods_and_bad_json() {
        let reply = reply_to(r#"{"id":"a","method":"sessions.list"}"#, &state());
        assert!(
            reply.contains(r#""id":"a""#) && reply.contains("-3"),
            "{reply}"
        );
        let reply = reply_to("{nope", &state());
        assert!(
            reply.contains(r#""id":null"#) && reply.contains("-1"),
            "{reply}"
        );
    }
}
