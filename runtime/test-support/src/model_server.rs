//! Fake model servers: a scripted HTTP/1.1 server on 127.0.0.1 that replays a provider's
//! documented stream format (server-sent events, chunked or close-delimited), its error replies
//! (status and JSON body) and broken transports (a cut mid-body, a server that holds the
//! connection open), for the model providers' tests and the gateway's agent tests.
//!
//! Each accepted connection reads one request, records it, and plays the next [`Script`]: status,
//! headers, then body parts written as they come (chunked or close-delimited), with gates the
//! test opens and an abrupt cut. The server reports when the client closes a connection, so a
//! cancellation test can await the close instead of sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`, one HTTP chunk per [`Part::Bytes`].
    Chunked,
    /// No length: the body ends when the server closes the connection.
    CloseDelimited,
    /// `Content-Length` of all byte parts (no gates or cuts).
    Length,
}

/// One step of a response body.
#[derive(Debug, Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    /// Waits until the test notifies.
    Gate(Arc<Notify>),
    /// Closes the connection at once, without finishing the body.
    Cut,
    /// Writes nothing more and waits for the client to close the connection.
    Hold,
}

#[derive(Debug, Clone)]
pub struct Script {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    pub parts: Vec<Part>,
}

impl Script {
    /// A `text/event-stream` reply whose body is written in pieces of `piece` bytes.
    pub fn sse(body: &[u8], piece: usize) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            framing: Framing::Chunked,
            parts: body
                .chunks(piece.max(1))
                .map(|c| Part::Bytes(c.to_vec()))
                .collect(),
        }
    }

    /// A `text/event-stream` reply with one HTTP chunk per SSE event (split at blank lines).
    pub fn sse_per_event(body: &[u8]) -> Self {
        let text = String::from_utf8(body.to_vec()).expect("fixture is UTF-8");
        let mut parts = Vec::new();
        for event in text.split_inclusive("\n\n") {
            parts.push(Part::Bytes(event.as_bytes().to_vec()));
        }
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            framing: Framing::Chunked,
            parts,
        }
    }

    /// A JSON reply with a status (for error responses).
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            framing: Framing::Length,
            parts: vec![Part::Bytes(body.as_bytes().to_vec())],
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn then(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }
}

/// What the server saw on a connection.
#[derive(Debug)]
pub enum ConnEvent {
    Request(Recorded),
    /// The client closed the connection (EOF or reset) while the server was holding it open.
    ClientClosed,
    /// The server finished its script.
    Finished,
}

pub struct MockServer {
    pub base_url: String,
    events: mpsc::UnboundedReceiver<ConnEvent>,
}

/// Anything the server can talk over (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

type Wrap = Arc<
    dyn Fn(
            tokio::net::TcpStream,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Box<dyn Stream>>> + Send>>
        + Send
        + Sync,
>;

impl MockServer {
    /// Starts a plain HTTP server; `path_prefix` is appended to the base URL (e.g. `/v1`).
    pub async fn start(path_prefix: &str, scripts: Vec<Script>) -> Self {
        let wrap: Wrap =
            Arc::new(|tcp| Box::pin(async move { Some(Box::new(tcp) as Box<dyn Stream>) }));
        Self::start_with(path_prefix, scripts, "http", "127.0.0.1", wrap).await
    }

    /// Starts a server whose connections are first passed through `wrap` (e.g. a TLS acceptor).
    pub async fn start_with(
        path_prefix: &str,
        scripts: Vec<Script>,
        scheme: &str,
        host: &str,
        wrap: Wrap,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake model server on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("the fake model server's address")
            .port();
        let (tx, events) = mpsc::unbounded_channel();
        let scripts = Arc::new(Mutex::new(VecDeque::from(scripts)));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                let scripts = Arc::clone(&scripts);
                let wrap = Arc::clone(&wrap);
                tokio::spawn(async move {
                    let Some(stream) = wrap(tcp).await else {
                        return;
                    };
                    serve(stream, scripts, tx).await;
                });
            }
        });
        Self {
            base_url: format!("{scheme}://{host}:{port}{path_prefix}"),
            events,
        }
    }

    /// The next request received (waits at most 10 s).
    pub async fn request(&mut self) -> Recorded {
        loop {
            match self.next_event().await {
                ConnEvent::Request(request) => return request,
                _ => continue,
            }
        }
    }

    /// Waits (at most 10 s) until a connection is closed by the client.
    pub async fn client_closed(&mut self) {
        loop {
            match self.next_event().await {
                ConnEvent::ClientClosed => return,
                _ => continue,
            }
        }
    }

    async fn next_event(&mut self) -> ConnEvent {
        // A liveness bound far above any load: an event that has not come by then never will.
        tokio::time::timeout(Duration::from_secs(60), self.events.recv())
            .await
            .expect("a mock server event (request or client close) within 60 s")
            .expect("mock server alive")
    }
}

async fn read_request(stream: &mut Box<dyn Stream>) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

/// Waits until the peer closes: a read returns EOF or an error. Data the client might still send
/// is ignored.
async fn wait_for_client_close(stream: &mut Box<dyn Stream>) {
    let mut sink = [0u8; 256];
    loop {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// The status line and headers of a script's response (its framing decides the length header).
fn response_head(script: &Script) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", script.status, reason(script.status));
    for (name, value) in &script.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match script.framing {
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        Framing::CloseDelimited => {}
        Framing::Length => {
            let total: usize = script
                .parts
                .iter()
                .map(|p| match p {
                    Part::Bytes(b) => b.len(),
                    _ => 0,
                })
                .sum();
            head.push_str(&format!("content-length: {total}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    head
}

async fn serve(
    mut stream: Box<dyn Stream>,
    scripts: Arc<Mutex<VecDeque<Script>>>,
    tx: mpsc::UnboundedSender<ConnEvent>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let _ = tx.send(ConnEvent::Request(request));
    let next = scripts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    let Some(script) = next else {
        let _ = stream
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 9\r\nconnection: close\r\n\r\nno script")
            .await;
        return;
    };
    let head = response_head(&script);
    if stream.write_all(head.as_bytes()).await.is_err() {
        let _ = tx.send(ConnEvent::ClientClosed);
        return;
    }
    for part in script.parts {
        match part {
            Part::Bytes(bytes) => {
                let written = if script.framing == Framing::Chunked {
                    let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
                    frame.extend_from_slice(&bytes);
                    frame.extend_from_slice(b"\r\n");
                    stream.write_all(&frame).await
                } else {
                    stream.write_all(&bytes).await
                };
                if written.is_err() || stream.flush().await.is_err() {
                    let _ = tx.send(ConnEvent::ClientClosed);
                    return;
                }
            }
            Part::Gate(gate) => {
                // Watch for the client going away while gated.
                let mut sink = [0u8; 64];
                tokio::select! {
                    () = gate.notified() => {}
                    read = stream.read(&mut sink) => {
                        if matches!(read, Ok(0) | Err(_)) {
                            let _ = tx.send(ConnEvent::ClientClosed);
                            return;
                        }
                    }
                }
            }
            Part::Cut => {
                let _ = stream.shutdown().await;
                let _ = tx.send(ConnEvent::Finished);
                return;
            }
            Part::Hold => {
                wait_for_client_close(&mut stream).await;
                let _ = tx.send(ConnEvent::ClientClosed);
                return;
            }
        }
    }
    if script.framing == Framing::Chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let _ = tx.send(ConnEvent::Finished);
}
