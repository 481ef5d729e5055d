//! Test support: a real gateway on a free loopback port with its own data directory, and a raw
//! WebSocket client (tokio-tungstenite) that speaks frames, so tests see exactly what a
//! third-party client sees.
#![allow(dead_code)]

pub mod agent;
pub mod alone;
pub mod platform;
pub mod process;
pub mod raw_http;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

/// A gateway running in this process.
pub struct TestGateway {
    pub running: Option<flynn_gateway::Running>,
    pub addr: std::net::SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl TestGateway {
    /// Starts a gateway with `extra_toml` appended to a config that puts data in a temp dir.
    pub async fn start(extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra_toml).await
    }

    pub async fn start_in(dir: tempfile::TempDir, extra_toml: &str) -> Self {
        let config_path = dir.path().join("flynn.toml");
        let data = dir.path().join("data");
        let text = format!(
            "[storage]\ndata_dir = {data:?}\n\n[server]\nport = 0\n{extra_toml}\n",
            data = data.display().to_string()
        );
        std::fs::write(&config_path, text).expect("write config");
        let config = flynn_gateway::Config::load(&config_path).expect("valid test config");
        let running = flynn_gateway::start(config, Some(config_path.clone()))
            .await
            .expect("gateway starts");
        Self {
            addr: running.addr,
            running: Some(running),
            dir,
            config_path,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn client(&self) -> Ws {
        Ws::connect(&self.url(), &[])
            .await
            .expect("websocket connects")
    }

    /// Graceful shutdown, keeping the directory for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }

    pub fn write_config(&self, extra_toml: &str) {
        let data = self.data_dir();
        let text = format!(
            "[storage]\ndata_dir = {data:?}\n\n[server]\nport = 0\n{extra_toml}\n",
            data = data.display().to_string()
        );
        std::fs::write(&self.config_path, text).expect("write config");
    }
}

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("flynn.toml")
}

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

/// A session id for the typed client's params (`types::SessionId` checks the spec's rule).
pub fn sid(id: impl AsRef<str>) -> flynn_protocol::types::SessionId {
    let id = id.as_ref();
    id.parse()
        .unwrap_or_else(|e| panic!("{id:?} is a valid session id: {e}"))
}
