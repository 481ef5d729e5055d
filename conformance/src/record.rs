//! `record`: a WebSocket proxy between a client and a gateway that writes the live exchange as
//! a transcript. Every connection the client opens is proxied to the upstream with the same
//! path, `Authorization`, `Origin` and subprotocols; the frames in both directions become
//! `send` and `expect` lines (volatile values turned into matchers by
//! [`crate::volatile::Generalizer`]), closes become `close` and `expect-close` lines. Every
//! frame is also held to the spec; what breaks it is reported when the recording ends.
//!
//! The transcript is written when the recording stops (Ctrl-C or SIGTERM for the command).
//! Review it before committing it: name and describe it, loosen what only your gateway does.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::report::{Failure, FailureKind, Report, TranscriptReport};
use crate::spec::Spec;
use crate::transcript::{DEFAULT_CONN, render_line};
use crate::volatile::Generalizer;
use crate::wirecheck::ConnectionRules;
use crate::ws::{self, Incoming};

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the transcript {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub listen: SocketAddr,
    /// The gateway, e.g. `ws://127.0.0.1:18800/`.
    pub upstream: String,
    pub out: PathBuf,
    /// Header name (default: the file name without `.jsonl`).
    pub name: Option<String>,
    pub description: Option<String>,
    /// The token the client uses; written as `${TOKEN}` / `${TOKEN_B64URL}`.
    pub token: Option<String>,
}

#[derive(Default)]
struct Recording {
    lines: Vec<Value>,
    generalizer: Generalizer,
    connections: usize,
    credentials: bool,
    failures: Vec<Failure>,
}

type Shared = Arc<Mutex<Recording>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Recording> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A bound recorder.
pub struct Recorder {
    listener: TcpListener,
    options: RecordOptions,
}

impl Recorder {
    pub async fn bind(options: RecordOptions) -> Result<Self, RecordError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| RecordError::Bind {
                    addr: options.listen,
                    source,
                })?;
        Ok(Self { listener, options })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Proxies until `stop` completes, then writes the transcript and returns what broke the
    /// spec on the wire.
    pub async fn run(
        self,
        spec: Arc<Spec>,
        stop: impl Future<Output = ()>,
    ) -> Result<Report, RecordError> {
        let started = Instant::now();
        let shared: Shared = Arc::default();
        let mut tasks = JoinSet::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = self.listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let name = {
                        let mut r = lock(&shared);
                        r.connections += 1;
                        if r.connections == 1 { DEFAULT_CONN.to_owned() } else { format!("c{}", r.connections) }
                    };
                    tasks.spawn(proxy(stream, name, self.options.clone(), shared.clone(), spec.clone()));
                }
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let recording = std::mem::take(&mut *lock(&shared));
        write_transcript(&self.options, &recording)?;
        let name = transcript_name(&self.options);
        let mut report = TranscriptReport::new(&name, &self.options.out.display().to_string());
        report.failures = recording.failures;
        let report = report.finish(started.elapsed());
        Ok(Report::new(
            "record",
            &self.options.upstream,
            &spec.version,
            vec![report],
        ))
    }
}

fn transcript_name(options: &RecordOptions) -> String {
    options.name.clone().unwrap_or_else(|| {
        options
            .out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recorded".to_owned())
    })
}

fn write_transcript(options: &RecordOptions, recording: &Recording) -> Result<(), RecordError> {
    let header = json!({
        "type": "header",
        "name": transcript_name(options),
        "description": options.description.clone().unwrap_or_else(|| format!("Recorded from {}; say what this transcript shows.", options.upstream)),
        "gateway": {"auth": if recording.credentials || options.token.is_some() { "token" } else { "any" }},
    });
    let mut text = String::new();
    for line in std::iter::once(&header).chain(&recording.lines) {
        text.push_str(&render_line(line));
        text.push('\n');
    }
    std::fs::write(&options.out, text).map_err(|source| RecordError::Write {
        path: options.out.clone(),
        source,
    })
}

fn line(kind: &str, conn: &str, mut fields: Map<String, Value>) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::from(kind));
    if conn != DEFAULT_CONN {
        map.insert("conn".into(), Value::from(conn));
    }
    map.append(&mut fields);
    Value::Object(map)
}

/// What the client's handshake carried.
#[derive(Debug, Default, Clone)]
struct Handshake {
    path: String,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
}

impl Handshake {
    /// Notes what `request` carried and answers `flynn.v1` when the client offered it.
    fn accept(&mut self, request: &Request, mut response: Response) -> Response {
        self.path = request.uri().path().to_owned();
        for (name, display) in [("authorization", "Authorization"), ("origin", "Origin")] {
            if let Some(v) = request.headers().get(name).and_then(|v| v.to_str().ok()) {
                self.headers.push((display.to_owned(), v.to_owned()));
            }
        }
        self.subprotocols = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if self.subprotocols.iter().any(|p| p == "flynn.v1") {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("flynn.v1"),
            );
        }
        response
    }

    /// Whether the transcript needs a `connect` line for this handshake.
    fn notable(&self) -> bool {
        !self.headers.is_empty() || !self.subprotocols.is_empty() || self.path != "/"
    }

    fn carries_credentials(&self) -> bool {
        self.headers.iter().any(|(k, _)| k == "Authorization")
            || self
                .subprotocols
                .iter()
                .any(|p| p.starts_with("flynn.bearer."))
    }

    /// The fields of the `connect` line (empty when the handshake is not notable), with the
    /// token hidden.
    fn connect_fields(&self, token: Option<&str>) -> Map<String, Value> {
        let mut connect = Map::new();
        if !self.notable() {
            return connect;
        }
        if !self.headers.is_empty() {
            let headers: Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(ws::hide_token(v, token))))
                .collect();
            connect.insert("headers".into(), Value::Object(headers));
        }
        if !self.subprotocols.is_empty() {
            let protocols: Vec<String> = self
                .subprotocols
                .iter()
                .map(|p| ws::hide_token(p, token))
                .collect();
            connect.insert("subprotocols".into(), Value::from(protocols));
        }
        if self.path != "/" {
            connect.insert("path".into(), Value::from(self.path.clone()));
        }
        connect
    }
}

type ClientSink = SplitSink<WebSocketStream<TcpStream>, Message>;
type ClientStream = SplitStream<WebSocketStream<TcpStream>>;

async fn proxy(
    stream: TcpStream,
    conn: String,
    options: RecordOptions,
    shared: Shared,
    spec: Arc<Spec>,
) {
    let mut handshake = Handshake::default();
    // tungstenite's handshake callback returns its (large) error response type.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| Ok(handshake.accept(request, response));
    let client = match tokio_tungstenite::accept_hdr_async(stream, callback).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!(error = %e, "a client's WebSocket handshake failed");
            return;
        }
    };
    if handshake.notable() && handshake.carries_credentials() {
        lock(&shared).credentials = true;
    }
    let mut connect = handshake.connect_fields(options.token.as_deref());
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let protocols =
        (!handshake.subprotocols.is_empty()).then_some(handshake.subprotocols.as_slice());
    let upstream = ws::connect(
        &options.upstream,
        Some(&handshake.path),
        &handshake.headers,
        protocols,
        (),
        up_tx,
    )
    .await;
    let (mut client_sink, client_stream) = client.split();
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            if let ws::ConnectError::Http { status, .. } = &e {
                connect.insert("status".into(), Value::from(*status));
                lock(&shared).lines.push(line("connect", &conn, connect));
            }
            tracing::warn!(error = %e, "the upstream refused the connection");
            let _ = client_sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "the upstream gateway refused the connection".into(),
                })))
                .await;
            return;
        }
    };
    if handshake.notable() {
        lock(&shared).lines.push(line("connect", &conn, connect));
    }
    let tap = Tap {
        conn: &conn,
        shared: &shared,
        spec: &spec,
        rules: ConnectionRules::default(),
        client_closed: false,
        server_closed: false,
    };
    relay(tap, client_sink, client_stream, &upstream, up_rx).await;
}

/// Forwards frames both ways until either side is gone or both have closed, recording each
/// through `tap`.
async fn relay(
    mut tap: Tap<'_>,
    mut client_sink: ClientSink,
    mut client_stream: ClientStream,
    upstream: &ws::ClientConn,
    mut up_rx: mpsc::UnboundedReceiver<((), Incoming)>,
) {
    loop {
        tokio::select! {
            message = client_stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str().to_owned();
                    tap.client_text(&text);
                    if !upstream.send_text(text) {
                        break;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(1000);
                    tap.client_close(code);
                    upstream.close(code);
                    if tap.server_closed {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            incoming = up_rx.recv() => match incoming {
                Some(((), Incoming::Text(text))) => {
                    tap.server_text(&text);
                    if client_sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(((), Incoming::Binary(_))) => {}
                Some(((), Incoming::Closed { code, reason })) => {
                    tap.server_close(code);
                    let frame = code.map(|c| CloseFrame { code: CloseCode::from(c), reason: reason.into() });
                    let _ = client_sink.send(Message::Close(frame)).await;
                    if tap.client_closed {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}

/// What one proxied connection adds to the recording: its lines, and the spec failures of the
/// gateway's frames.
struct Tap<'a> {
    conn: &'a str,
    shared: &'a Shared,
    spec: &'a Spec,
    rules: ConnectionRules,
    client_closed: bool,
    server_closed: bool,
}

impl Tap<'_> {
    /// Records a text frame from the client as a `send` line (`raw` when it is not an object).
    fn client_text(&mut self, text: &str) {
        let mut r = lock(self.shared);
        let mut fields = Map::new();
        match serde_json::from_str::<Value>(text) {
            Ok(frame) if frame.is_object() => {
                let issues = self.rules.check_client_frame(self.spec, &frame);
                if !issues.is_empty() {
                    fields.insert("malformed".into(), Value::Bool(true));
                }
                let generalized = r.generalizer.client_frame(&frame);
                fields.insert("frame".into(), generalized);
            }
            _ => {
                self.rules.note_request_text(text);
                fields.insert("raw".into(), Value::from(text.to_owned()));
            }
        }
        r.lines.push(line("send", self.conn, fields));
    }

    /// Records the client's close as a `close` line unless a side closed already.
    fn client_close(&mut self, code: u16) {
        if !self.server_closed && !self.client_closed {
            let mut fields = Map::new();
            if code != 1000 {
                fields.insert("code".into(), Value::from(code));
            }
            lock(self.shared)
                .lines
                .push(line("close", self.conn, fields));
        }
        self.client_closed = true;
    }

    /// Holds a gateway frame to the spec and records it as an `expect` line.
    fn server_text(&mut self, text: &str) {
        let mut r = lock(self.shared);
        match serde_json::from_str::<Value>(text) {
            Ok(frame) => {
                for issue in self.rules.check_server_frame(self.spec, &frame) {
                    let mut f = Failure::new(r.lines.len() + 2, issue.kind, issue.message)
                        .conn(self.conn)
                        .received(frame.clone());
                    f.path = issue.path;
                    r.failures.push(f);
                }
                let generalized = r.generalizer.server_frame(&frame);
                let mut fields = Map::new();
                fields.insert("frame".into(), generalized);
                r.lines.push(line("expect", self.conn, fields));
            }
            Err(e) => {
                let f = Failure::new(
                    r.lines.len() + 2,
                    FailureKind::Spec,
                    format!("the gateway sent a frame that is not JSON ({e})"),
                )
                .conn(self.conn)
                .received(Value::from(text.to_owned()));
                r.failures.push(f);
            }
        }
    }

    /// Records the gateway's close as an `expect-close` line unless the client closed first.
    fn server_close(&mut self, code: Option<u16>) {
        if !self.client_closed {
            let mut fields = Map::new();
            if let Some(code) = code {
                fields.insert("code".into(), Value::from(code));
            }
            lock(self.shared)
                .lines
                .push(line("expect-close", self.conn, fields));
        }
        self.server_closed = true;
    }
}
