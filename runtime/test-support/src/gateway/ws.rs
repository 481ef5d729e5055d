//! The raw WebSocket client: speaks frames (tokio-tungstenite), so a test sees exactly what a
//! third-party client sees and can send what no typed client would (malformed params, unknown
//! methods, batches, binary frames).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one frame before failing: a liveness bound far above what any
/// load makes a frame take (a frame that has not come by then was never going to come).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// A raw WebSocket client.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: i64,
    /// Frames read while waiting for something else.
    pub backlog: Vec<Value>,
}

impl Ws {
    pub async fn connect(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (k, v) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            stream,
            next_id: 1,
            backlog: Vec::new(),
        })
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, frame: &Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a request and returns its id.
    pub async fn request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "id": id, "method": method, "params": params }))
            .await;
        id
    }

    /// The next text frame as JSON (None when the connection closed).
    pub async fn next_frame(&mut self) -> Option<Value> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        self.read_frame().await
    }

    async fn read_frame(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("a frame within the timeout")?;
            match message {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(text.as_str()).expect("frame is JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Waits for the reply to `id`, returning (events for `id` in order, reply). Other frames
    /// are kept in the backlog.
    pub async fn reply_to(&mut self, id: i64) -> (Vec<Value>, Value) {
        let mut events = Vec::new();
        let mut others = Vec::new();
        let mut pending: Vec<Value> = std::mem::take(&mut self.backlog);
        pending.reverse();
        loop {
            let frame = match pending.pop() {
                Some(f) => f,
                None => self
                    .read_frame()
                    .await
                    .expect("connection open until the reply"),
            };
            if frame["id"] == json!(id) {
                if frame.get("event").is_some() {
                    events.push(frame);
                } else {
                    pending.reverse();
                    others.extend(pending);
                    self.backlog = others;
                    return (events, frame);
                }
            } else {
                others.push(frame);
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.reply_to(id).await.1
    }

    /// The close code the server sends (reads until the close frame).
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .ok()?
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }
}
