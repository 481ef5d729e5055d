//! The client side shared by the load generator and the idle-connection test: connecting with
//! small buffers (so the client does not pay for what the server is measured on), writing
//! `system.info` requests, and reading the id of a reply without a full JSON parse.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::BenchError;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single reply may take before the run is declared broken.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens a WebSocket to `ws://addr/` with Nagle off, an 8 KiB read buffer and a 16 KiB write
/// buffer: requests fed in one batch leave in one `send`, so the client stays cheaper than the
/// server it loads.
pub async fn connect(addr: SocketAddr) -> Result<Ws, BenchError> {
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024);
    let url = format!("ws://{addr}/");
    let (ws, _) = tokio::time::timeout(
        REPLY_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .map_err(|_| BenchError::Timeout(format!("connecting to ws://{addr}/")))?
    .map_err(|e| BenchError::ws(addr, e))?;
    Ok(ws)
}

/// The text of request `id`.
pub fn request(id: u64) -> Message {
    Message::text(format!(r#"{{"id":{id},"method":"system.info"}}"#))
}

/// What a reply said about the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `{"id":N,"result":…}`.
    Result(u64),
    /// `{"id":N,"error":…}` or any other frame carrying an integer id.
    Error(u64),
    /// A frame without an integer id.
    Unknown,
}

/// Reads the id of a reply. Both servers write `{"id":N,"result":…}` in that order, so the fast
/// path is a prefix scan; anything else is parsed properly.
pub fn classify(text: &str) -> Reply {
    if let Some(rest) = text.strip_prefix(r#"{"id":"#) {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        if end > 0
            && rest[end..].starts_with(r#","result":"#)
            && let Ok(id) = rest[..end].parse()
        {
            return Reply::Result(id);
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Reply::Unknown;
    };
    match value.get("id").and_then(Value::as_u64) {
        Some(id) if value.get("result").is_some() => Reply::Result(id),
        Some(id) => Reply::Error(id),
        None => Reply::Unknown,
    }
}

/// The `system.info` result as both servers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub version: String,
    pub uptime: u64,
    pub connections: u64,
    /// The names of the result's members (sorted).
    pub members: Vec<String>,
    /// The whole reply frame's length in bytes.
    pub frame_bytes: usize,
}

/// One `system.info` call, fully parsed and checked: proves the server answers correctly.
pub async fn system_info(ws: &mut Ws, addr: SocketAddr, id: u64) -> Result<Info, BenchError> {
    ws.send(request(id))
        .await
        .map_err(|e| BenchError::ws(addr, e))?;
    loop {
        let message = tokio::time::timeout(REPLY_TIMEOUT, ws.next())
            .await
            .map_err(|_| BenchError::Timeout(format!("system.info reply from {addr}")))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(BenchError::ws(addr, e)),
            None => {
                return Err(BenchError::Reply {
                    addr,
                    detail: "the connection closed before the system.info reply".into(),
                });
            }
        };
        let bad = |detail: String| BenchError::Reply { addr, detail };
        let value: Value = serde_json::from_str(text.as_str())
            .map_err(|e| bad(format!("not JSON ({e}): {text}")))?;
        if value.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(bad(format!("expected the reply to id {id}, got {text}")));
        }
        let result = value
            .get("result")
            .ok_or_else(|| bad(format!("no result: {text}")))?;
        let field = |name: &str| {
            result
                .get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("result.{name} is not an integer: {text}")))
        };
        return Ok(Info {
            version: result
                .get("version")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("result.version is not a string: {text}")))?
                .to_owned(),
            uptime: field("uptime")?,
            connections: field("connections")?,
            members: result
                .as_object()
                .map(|members| members.keys().cloned().collect())
                .unwrap_or_default(),
            frame_bytes: text.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_replies() {
        assert_eq!(classify(r#"{"id":17,"result":{"a":1}}"#), Reply::Result(17));
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#),
            Reply::Result(5)
        );
        assert_eq!(
            classify(r#"{"id":9,"error":{"code":-3,"message":"x"}}"#),
            Reply::Error(9)
        );
        assert_eq!(classify(r#"{"id":"x","result":{}}"#), Reply::Unknown);
        assert_eq!(classify("garbage"), Reply::Unknown);
    }
}
