//! One transcript played to a client: the connections it opened bound to the transcript's,
//! the frames it sends compared with `send` lines, `expect` frames played back with the
//! client's ids, and closes.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::pattern::{Captures, Pattern, concretize, match_value, substitute};
use crate::report::{Failure, FailureKind, TranscriptReport};
use crate::spec::Spec;
use crate::transcript::{Outgoing, StepKind, Transcript};
use crate::wirecheck::{ConnectionRules, id_key};
use crate::ws;

use super::client::{
    FromClient, describe_request, forward_client, normalize_request, presents_token,
};
use super::types::{Accepted, Handshake, ServeOptions};

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

struct ServedConn {
    sink: Sink,
    /// Client frames not yet consumed by a `send` step.
    buffer: Vec<FromClient>,
    /// Transcript id -> the id the client used.
    ids: HashMap<String, Value>,
    seq: u64,
    rules: ConnectionRules,
    closed: bool,
}

pub(super) struct Player<'a> {
    spec: &'a Spec,
    t: &'a Transcript,
    options: &'a ServeOptions,
    order: Vec<String>,
    conns: HashMap<String, ServedConn>,
    events_tx: mpsc::UnboundedSender<(String, FromClient)>,
    events_rx: mpsc::UnboundedReceiver<(String, FromClient)>,
    captures: Captures,
    failures: Vec<Failure>,
    line: usize,
}

impl<'a> Player<'a> {
    pub(super) fn new(spec: &'a Spec, t: &'a Transcript, options: &'a ServeOptions) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            spec,
            t,
            options,
            order: t.connections(),
            conns: HashMap::new(),
            events_tx,
            events_rx,
            captures: Captures::default(),
            failures: Vec::new(),
            line: 0,
        }
    }

    fn fail(&mut self, conn: &str, kind: FailureKind, message: impl Into<String>) -> &mut Failure {
        self.failures
            .push(Failure::new(self.line, kind, message).conn(conn));
        let last = self.failures.len() - 1;
        &mut self.failures[last]
    }

    pub(super) async fn play(
        mut self,
        first: Accepted,
        accepted: &mut mpsc::UnboundedReceiver<Accepted>,
    ) -> TranscriptReport {
        let started = Instant::now();
        let first_name = self
            .order
            .first()
            .cloned()
            .unwrap_or_else(|| crate::transcript::DEFAULT_CONN.to_owned());
        self.bind(&first_name, first);
        let t = self.t;
        for step in &t.steps {
            self.line = step.line;
            let conn = step.conn_name().to_owned();
            if !matches!(
                step.kind,
                StepKind::Comment | StepKind::ExpectSilence { .. } | StepKind::Http(_)
            ) && !self.conns.contains_key(&conn)
            {
                let wait = tokio::time::timeout(self.options.timeout, accepted.recv()).await;
                match wait {
                    Ok(Some(next)) => self.bind(&conn, next),
                    _ => {
                        self.fail(
                            &conn,
                            FailureKind::Connect,
                            format!("the client did not open connection `{conn}`"),
                        );
                        break;
                    }
                }
            }
            match &step.kind {
                // `serve` plays the WebSocket side only (README.md, "HTTP steps").
                StepKind::Comment | StepKind::ExpectSilence { .. } | StepKind::Http(_) => {}
                StepKind::Connect {
                    status: Some(_), ..
                } => {
                    self.fail(&conn, FailureKind::Transcript, "serve cannot refuse a handshake with an HTTP status; this step is not played");
                }
                StepKind::Connect { .. } => {}
                StepKind::Send { frame, malformed } => self.receive(&conn, frame, *malformed).await,
                StepKind::Expect { pattern, .. } => self.answer(&conn, pattern).await,
                StepKind::ExpectClose { code } => self.close(&conn, code.unwrap_or(1000)).await,
                StepKind::Close { .. } => self.await_close(&conn).await,
            }
        }
        self.line = 0;
        self.finish().await;
        let mut report = TranscriptReport::new(t.name(), &t.path.display().to_string());
        report.failures = self.failures;
        report.finish(started.elapsed())
    }

    /// Binds an accepted connection to transcript connection `name` and checks its handshake.
    fn bind(&mut self, name: &str, accepted: Accepted) {
        let Accepted { ws, handshake } = accepted;
        let connect = self.t.steps.iter().find_map(|s| match &s.kind {
            StepKind::Connect {
                headers,
                subprotocols,
                ..
            } if s.conn_name() == name => Some((headers, subprotocols)),
            _ => None,
        });
        let token = self.options.token.as_deref();
        match connect {
            Some((headers, subprotocols)) => {
                self.check_headers(name, headers, &handshake, token);
                if let Some(list) = subprotocols {
                    self.check_subprotocols(name, list, &handshake, token);
                }
            }
            None => {
                if let Some(token) = token
                    && !presents_token(&handshake, token)
                {
                    self.fail(name, FailureKind::Connect, "the client did not present the token (`Authorization: Bearer` or the `flynn.bearer.` subprotocol)");
                }
            }
        }
        let (sink, stream) = ws.split();
        tokio::spawn(forward_client(
            stream,
            self.events_tx.clone(),
            name.to_owned(),
        ));
        self.conns.insert(
            name.to_owned(),
            ServedConn {
                sink,
                buffer: Vec::new(),
                ids: HashMap::new(),
                seq: 0,
                rules: ConnectionRules::default(),
                closed: false,
            },
        );
    }

    /// The `connect` line's headers, each as the handshake must carry it.
    fn check_headers(
        &mut self,
        name: &str,
        headers: &[(String, String)],
        handshake: &Handshake,
        token: Option<&str>,
    ) {
        for (k, v) in headers {
            let Some(expected) = ws::expand_token(v, token) else {
                self.fail(
                    name,
                    FailureKind::Transcript,
                    format!("header `{k}` needs ${{TOKEN}}: pass --token"),
                );
                continue;
            };
            let got = handshake
                .headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone());
            if got.as_deref() != Some(expected.as_str()) {
                let f = self.fail(
                    name,
                    FailureKind::Connect,
                    format!("the handshake's `{k}` header differs"),
                );
                f.expected = Some(Value::from(v.clone()));
                f.received = got.map(Value::from);
            }
        }
    }

    /// The `connect` line's subprotocols, exactly the ones the handshake offered.
    fn check_subprotocols(
        &mut self,
        name: &str,
        list: &[String],
        handshake: &Handshake,
        token: Option<&str>,
    ) {
        let expected: Vec<String> = list
            .iter()
            .filter_map(|p| ws::expand_token(p, token))
            .collect();
        if expected != handshake.subprotocols {
            let f = self.fail(
                name,
                FailureKind::Connect,
                "the handshake offered other subprotocols",
            );
            f.expected = Some(Value::from(list.to_vec()));
            f.received = Some(Value::from(handshake.subprotocols.clone()));
        }
    }

    /// Waits for the next client frame on `name` (other connections' frames are buffered).
    async fn next_from(&mut self, name: &str, deadline: Instant) -> Option<FromClient> {
        loop {
            if let Some(conn) = self.conns.get_mut(name)
                && !conn.buffer.is_empty()
            {
                return Some(conn.buffer.remove(0));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((tag, message))) = tokio::time::timeout(wait, self.events_rx.recv()).await
            else {
                return None;
            };
            if let Some(conn) = self.conns.get_mut(&tag) {
                if matches!(message, FromClient::Close(_)) && conn.closed {
                    continue;
                }
                conn.buffer.push(message);
            }
        }
    }

    async fn receive(&mut self, name: &str, expected: &Outgoing, malformed: bool) {
        let deadline = Instant::now() + self.options.timeout;
        let what = match expected {
            Outgoing::Raw(_) => "the raw frame".to_owned(),
            Outgoing::Frame { raw, .. } => describe_request(raw),
        };
        let Some(message) = self.next_from(name, deadline).await else {
            self.fail(
                name,
                FailureKind::Missing,
                format!(
                    "the client did not send {what} within {} ms",
                    self.options.timeout.as_millis()
                ),
            );
            return;
        };
        let text = match message {
            FromClient::Text(text) => text,
            FromClient::Close(code) => {
                self.answer_close(name).await;
                self.fail(
                    name,
                    FailureKind::Close,
                    format!(
                        "the client closed the connection ({}) instead of sending {what}",
                        code.map_or("no code".to_owned(), |c| format!("code {c}"))
                    ),
                );
                return;
            }
        };
        match expected {
            Outgoing::Raw(raw) => self.receive_raw(name, raw, text),
            Outgoing::Frame { pattern, .. } => {
                self.receive_frame(name, &what, pattern, text, malformed);
            }
        }
    }

    /// A raw `send` line: the client's text, trimmed, is the line's text.
    fn receive_raw(&mut self, name: &str, raw: &str, text: String) {
        if let Some(conn) = self.conns.get_mut(name) {
            conn.rules.note_request_text(&text);
        }
        if raw.trim() != text.trim() {
            let f = self.fail(
                name,
                FailureKind::Mismatch,
                "the client sent other text than the raw frame",
            );
            f.expected = Some(Value::from(raw.to_owned()));
            f.received = Some(Value::from(text));
        }
    }

    /// A `send` frame: the client's frame holds to the spec (unless `malformed`) and equals
    /// the expected one, its id aside; the client's id is remembered for the replies.
    fn receive_frame(
        &mut self,
        name: &str,
        what: &str,
        pattern: &Pattern,
        text: String,
        malformed: bool,
    ) {
        let actual: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    name,
                    FailureKind::Spec,
                    format!("the client sent a frame that is not JSON ({e})"),
                )
                .received = Some(Value::from(text));
                return;
            }
        };
        let issues = match self.conns.get_mut(name) {
            Some(conn) => conn.rules.check_client_frame(self.spec, &actual),
            None => Vec::new(),
        };
        if !malformed {
            for issue in issues {
                let f = self.fail(name, issue.kind, format!("{what}: {}", issue.message));
                f.path = issue.path;
                f.received = Some(actual.clone());
            }
        }
        let expected_value = match substitute(pattern, &self.captures) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    name,
                    FailureKind::Transcript,
                    format!("cannot build the expected frame: {e}"),
                );
                return;
            }
        };
        if let (Some(tid), Some(aid)) = (expected_value.get("id"), actual.get("id"))
            && let Some(conn) = self.conns.get_mut(name)
        {
            conn.ids.insert(id_key(Some(tid)), aid.clone());
        }
        let exact = Pattern::exact(&normalize_request(&expected_value));
        let mut scratch = Captures::default();
        for d in match_value(&exact, &normalize_request(&actual), &mut scratch) {
            if d.path == "id"
                && actual
                    .get("id")
                    .is_some_and(|v| v.is_i64() || v.is_u64() || v.is_string())
            {
                continue;
            }
            let f = self.fail(
                name,
                FailureKind::Mismatch,
                format!("{what}: {}", d.message),
            );
            f.path = Some(d.path);
            f.expected = Some(d.expected);
            f.received = d.received;
        }
    }

    async fn answer(&mut self, name: &str, pattern: &Pattern) {
        let (mut frame, holes) = concretize(pattern, &mut self.captures);
        for hole in holes {
            self.fail(
                name,
                FailureKind::Transcript,
                "serve needs a value here: give the matcher an `$example`",
            )
            .path = Some(hole);
        }
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        // A batch reply (an array) maps the id of each of its replies.
        let objects: Vec<&mut Map<String, Value>> = match &mut frame {
            Value::Object(object) => vec![object],
            Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).collect(),
            _ => Vec::new(),
        };
        for object in objects {
            if let Some(id) = object.get("id").cloned()
                && let Some(actual) = conn.ids.get(&id_key(Some(&id)))
            {
                object.insert("id".into(), actual.clone());
            }
            if object.contains_key("event") {
                conn.seq += 1;
                object.insert("seq".into(), Value::from(conn.seq));
            }
        }
        let issues = conn.rules.check_server_frame(self.spec, &frame);
        let sent = conn
            .sink
            .send(Message::text(frame.to_string()))
            .await
            .is_ok();
        for issue in issues {
            let f = self.fail(
                name,
                FailureKind::Transcript,
                format!(
                    "the transcript's frame breaks the wire rules: {}",
                    issue.message
                ),
            );
            f.path = issue.path;
            f.received = Some(frame.clone());
        }
        if !sent {
            self.fail(
                name,
                FailureKind::Close,
                "cannot send: the client closed the connection",
            );
        }
    }

    async fn close(&mut self, name: &str, code: u16) {
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        let _ = conn
            .sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            })))
            .await;
        conn.closed = true;
    }

    /// The client closed `name`: answer its close frame (completing the handshake).
    async fn answer_close(&mut self, name: &str) {
        if let Some(conn) = self.conns.get_mut(name) {
            if !conn.closed {
                let _ = conn.sink.send(Message::Close(None)).await;
                let _ = conn.sink.close().await;
            }
            conn.closed = true;
        }
    }

    async fn await_close(&mut self, name: &str) {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            match self.next_from(name, deadline).await {
                Some(FromClient::Close(_)) => {
                    self.answer_close(name).await;
                    return;
                }
                Some(FromClient::Text(text)) => {
                    self.fail(
                        name,
                        FailureKind::Unexpected,
                        "the client sent a frame where the transcript has it close the connection",
                    )
                    .received = Some(serde_json::from_str(&text).unwrap_or(Value::String(text)));
                }
                None => {
                    self.fail(
                        name,
                        FailureKind::Close,
                        "the client did not close the connection",
                    );
                    return;
                }
            }
        }
    }

    async fn finish(&mut self) {
        let deadline = Instant::now() + self.options.linger;
        let names: Vec<String> = self.conns.keys().cloned().collect();
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((tag, message))) = tokio::time::timeout(wait, self.events_rx.recv()).await
            else {
                break;
            };
            if let Some(conn) = self.conns.get_mut(&tag) {
                conn.buffer.push(message);
            }
        }
        for name in names {
            let leftovers: Vec<FromClient> = self
                .conns
                .get_mut(&name)
                .map(|c| c.buffer.drain(..).collect())
                .unwrap_or_default();
            for message in leftovers {
                match message {
                    FromClient::Text(text) => {
                        self.fail(
                            &name,
                            FailureKind::Unexpected,
                            "the client sent a frame the transcript does not have",
                        )
                        .received =
                            Some(serde_json::from_str(&text).unwrap_or(Value::String(text)));
                    }
                    FromClient::Close(_) => self.answer_close(&name).await,
                }
            }
            if let Some(conn) = self.conns.get_mut(&name)
                && !conn.closed
            {
                let _ = conn
                    .sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "transcript finished".into(),
                    })))
                    .await;
            }
        }
    }
}
