//! `run`: plays the client side of transcripts against a gateway and reports every step where
//! the gateway differs (server conformance).
//!
//! Matching (README.md, "How frames are matched"): a reply is found by its `id`; an event by
//! its `id` and its order among that request's events; frames of different requests may
//! interleave freely. Every frame received is also held to the spec and to the wire rules
//! ([`crate::wirecheck`]), whether or not a step expects it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::pattern::{Captures, Pattern, match_value, substitute};
use crate::report::{Failure, FailureKind, Report, TranscriptReport};
use crate::run_http::{self, HttpTarget};
use crate::spec::Spec;
use crate::transcript::{AuthNeed, Outgoing, StepKind, Transcript};
use crate::wirecheck::{ConnectionRules, id_key};
use crate::ws::{self, ClientConn, ConnectError, Incoming};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The gateway, e.g. `ws://127.0.0.1:18800/`.
    pub url: String,
    /// The gateway's token; sent as `Authorization: Bearer` on connections without a `connect`
    /// line, and substituted for `${TOKEN}`.
    pub token: Option<String>,
    /// How long an expected frame or close may take.
    pub timeout: Duration,
    /// How long to keep listening after the last step for frames nobody expects.
    pub settle: Duration,
    /// Only check what the transcript lists (used to drive `record` with a draft).
    pub loose: bool,
}

impl RunOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            timeout: Duration::from_secs(10),
            settle: Duration::from_millis(100),
            loose: false,
        }
    }
}

/// Runs every transcript in order.
pub async fn run_all(spec: &Spec, transcripts: &[Transcript], options: &RunOptions) -> Report {
    let mut reports = Vec::with_capacity(transcripts.len());
    for t in transcripts {
        let report = run_transcript(spec, t, options).await;
        tracing::info!(transcript = t.name(), status = ?report.status, "transcript done");
        reports.push(report);
    }
    Report::new("run", &options.url, &spec.version, reports)
}

/// Why a transcript does not apply to this gateway, if it does not.
pub fn skip_reason(t: &Transcript, token: Option<&str>) -> Option<String> {
    match (t.header.gateway.auth, token) {
        (AuthNeed::Token, None) => Some(
            "shows token authentication: run it against a gateway that requires a token and pass --token".into(),
        ),
        (AuthNeed::None, Some(_)) => Some(
            "shows a gateway without a token: run it against a gateway that requires none (and without --token)".into(),
        ),
        _ => None,
    }
}

/// A frame received and not yet matched by a step.
#[derive(Debug)]
struct Received {
    frame: Value,
    is_event: bool,
    /// An array: the replies of a batch (JSON-RPC 2.0 section 6), matched as a whole.
    is_batch: bool,
    id: String,
}

#[derive(Debug, Default)]
struct Conn {
    client: Option<ClientConn>,
    /// Opened at some point (a name cannot be reused after its close).
    opened: bool,
    buffer: Vec<Received>,
    /// The server's close, once seen.
    closed: Option<Option<u16>>,
    /// The client started the close handshake.
    closing: bool,
    rules: ConnectionRules,
}

struct Runner<'a> {
    spec: &'a Spec,
    options: &'a RunOptions,
    conns: HashMap<String, Conn>,
    events_tx: mpsc::UnboundedSender<(String, Incoming)>,
    events_rx: mpsc::UnboundedReceiver<(String, Incoming)>,
    captures: Captures,
    failures: Vec<Failure>,
    /// The line of the step being played (failures found while waiting are attributed to it).
    line: usize,
}

/// Runs one transcript.
pub async fn run_transcript(spec: &Spec, t: &Transcript, options: &RunOptions) -> TranscriptReport {
    let path = t.path.display().to_string();
    if let Some(reason) = skip_reason(t, options.token.as_deref()) {
        return TranscriptReport::skipped(t.name(), &path, reason);
    }
    let started = Instant::now();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let mut runner = Runner {
        spec,
        options,
        conns: HashMap::new(),
        events_tx,
        events_rx,
        captures: Captures::default(),
        failures: Vec::new(),
        line: 0,
    };
    for step in &t.steps {
        runner.line = step.line;
        let conn = step.conn_name().to_owned();
        match &step.kind {
            StepKind::Comment => {}
            StepKind::Connect {
                headers,
                subprotocols,
                path,
                status,
            } => {
                runner
                    .connect(
                        &conn,
                        headers,
                        subprotocols.as_deref(),
                        path.as_deref(),
                        *status,
                    )
                    .await
            }
            StepKind::Send { frame, malformed } => runner.send(&conn, frame, *malformed).await,
            StepKind::Expect { pattern, .. } => runner.expect(&conn, pattern).await,
            StepKind::ExpectSilence { ms } => {
                runner
                    .expect_silence(step.conn.as_deref(), Duration::from_millis(*ms))
                    .await
            }
            StepKind::ExpectClose { code } => runner.expect_close(&conn, *code).await,
            StepKind::Close { code } => runner.close(&conn, *code).await,
            StepKind::Http(http) => {
                let target = HttpTarget {
                    url: &options.url,
                    token: options.token.as_deref(),
                    timeout: options.timeout,
                };
                let found =
                    run_http::play(spec, http, step.line, &target, &mut runner.captures).await;
                runner.failures.extend(found);
            }
        }
    }
    runner.line = 0;
    runner.finish().await;
    let mut report = TranscriptReport::new(t.name(), &path);
    report.failures = runner.failures;
    report.finish(started.elapsed())
}

impl Runner<'_> {
    fn fail(&mut self, conn: &str, kind: FailureKind, message: impl Into<String>) -> &mut Failure {
        self.failures
            .push(Failure::new(self.line, kind, message).conn(conn));
        let last = self.failures.len() - 1;
        &mut self.failures[last]
    }

    async fn connect(
        &mut self,
        name: &str,
        headers: &[(String, String)],
        subprotocols: Option<&[String]>,
        path: Option<&str>,
        status: Option<u16>,
    ) {
        if self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` is already open; use another `conn` name"),
            );
            return;
        }
        let token = self.options.token.as_deref();
        let mut expanded_headers = Vec::new();
        for (k, v) in headers {
            match ws::expand_token(v, token) {
                Some(v) => expanded_headers.push((k.clone(), v)),
                None => {
                    self.fail(
                        name,
                        FailureKind::Transcript,
                        format!("header `{k}` needs ${{TOKEN}}: pass --token"),
                    );
                    return;
                }
            }
        }
        let mut expanded_protocols = None;
        if let Some(list) = subprotocols {
            let mut out = Vec::new();
            for p in list {
                match ws::expand_token(p, token) {
                    Some(p) => out.push(p),
                    None => {
                        self.fail(
                            name,
                            FailureKind::Transcript,
                            "a subprotocol needs ${TOKEN}: pass --token",
                        );
                        return;
                    }
                }
            }
            expanded_protocols = Some(out);
        }
        self.open(
            name,
            &expanded_headers,
            expanded_protocols.as_deref(),
            path,
            status,
        )
        .await;
    }

    async fn open(
        &mut self,
        name: &str,
        headers: &[(String, String)],
        subprotocols: Option<&[String]>,
        path: Option<&str>,
        status: Option<u16>,
    ) {
        let result = ws::connect(
            &self.options.url,
            path,
            headers,
            subprotocols,
            name.to_owned(),
            self.events_tx.clone(),
        )
        .await;
        let conn = self.conns.entry(name.to_owned()).or_default();
        conn.opened = true;
        match (result, status) {
            (Ok(client), None) => {
                if let Some(offered) = subprotocols.filter(|p| !p.is_empty()) {
                    match &client.protocol {
                        Some(p) if offered.contains(p) && !p.starts_with("flynn.bearer.") => {}
                        Some(p) => {
                            let message = format!(
                                "the server selected subprotocol {p:?}; it must select one that was offered and never the token entry"
                            );
                            conn.client = Some(client);
                            self.fail(name, FailureKind::Connect, message);
                            return;
                        }
                        None => {}
                    }
                }
                conn.client = Some(client);
            }
            (Ok(client), Some(expected)) => {
                conn.client = Some(client);
                self.fail(
                    name,
                    FailureKind::Connect,
                    format!("the handshake succeeded; expected HTTP {expected}"),
                );
            }
            (Err(ConnectError::Http { status: got, .. }), Some(expected)) if got == expected => {
                conn.closed = Some(None);
            }
            (Err(e), _) => {
                conn.closed = Some(None);
                let message = format!("cannot open the connection: {e}");
                self.fail(name, FailureKind::Connect, message);
            }
        }
    }

    /// Opens `name` with the default credentials if no step opened it yet.
    async fn ensure_open(&mut self, name: &str) -> bool {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            let headers: Vec<(String, String)> = self
                .options
                .token
                .iter()
                .map(|t| ("Authorization".to_owned(), format!("Bearer {t}")))
                .collect();
            self.open(name, &headers, None, None, None).await;
        }
        self.conns.get(name).is_some_and(|c| c.client.is_some())
    }

    async fn send(&mut self, name: &str, frame: &Outgoing, malformed: bool) {
        if !self.ensure_open(name).await {
            return;
        }
        let text = match frame {
            Outgoing::Raw(text) => text.clone(),
            Outgoing::Frame { pattern, .. } => match substitute(pattern, &self.captures) {
                Ok(value) => {
                    if !malformed {
                        for v in self.spec.check_request(&value) {
                            self.fail(
                                name,
                                FailureKind::Transcript,
                                format!("the transcript sends a frame that breaks the spec: {v}"),
                            )
                            .path = Some(v.path.clone());
                        }
                    }
                    value.to_string()
                }
                Err(e) => {
                    self.fail(
                        name,
                        FailureKind::Transcript,
                        format!("cannot build the frame: {e}"),
                    );
                    return;
                }
            },
        };
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        conn.rules.note_request_text(&text);
        let closed = conn.closed.is_some();
        let sent = conn.client.as_ref().is_some_and(|c| c.send_text(text));
        if !sent || closed {
            self.fail(
                name,
                FailureKind::Close,
                "cannot send: the connection is closed",
            );
        }
    }

    /// Takes one incoming event (waiting until `deadline`); false on timeout.
    async fn pump(&mut self, deadline: Instant) -> bool {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((name, incoming))) = tokio::time::timeout(wait, self.events_rx.recv()).await
        else {
            return false;
        };
        self.dispatch(&name, incoming);
        true
    }

    fn dispatch(&mut self, name: &str, incoming: Incoming) {
        let line = self.line;
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        match incoming {
            Incoming::Closed { code, .. } => {
                conn.closed = Some(code);
                conn.client = None;
            }
            Incoming::Binary(len) => {
                self.failures.push(
                    Failure::new(line, FailureKind::Spec, format!("the server sent a binary frame ({len} bytes); the protocol uses text frames only"))
                        .conn(name),
                );
            }
            Incoming::Text(text) => {
                let frame = match serde_json::from_str::<Value>(&text) {
                    Ok(frame) => frame,
                    Err(e) => {
                        self.failures.push(
                            Failure::new(
                                line,
                                FailureKind::Spec,
                                format!("the server sent a frame that is not JSON ({e})"),
                            )
                            .conn(name)
                            .received(Value::String(text)),
                        );
                        return;
                    }
                };
                let issues = conn.rules.check_server_frame(self.spec, &frame);
                for issue in issues {
                    let mut f = Failure::new(line, issue.kind, issue.message)
                        .conn(name)
                        .received(frame.clone());
                    f.path = issue.path;
                    self.failures.push(f);
                }
                if conn.closing {
                    return;
                }
                conn.buffer.push(Received {
                    is_event: frame.get("event").is_some(),
                    is_batch: frame.is_array(),
                    id: id_key(frame.get("id")),
                    frame,
                });
            }
        }
    }

    fn expected_id(&mut self, name: &str, pattern: &Pattern) -> Option<String> {
        match pattern.member("id") {
            Some(Pattern::Scalar(v)) => Some(id_key(Some(v))),
            Some(Pattern::Matcher(m)) if m.reference.is_some() || m.literal.is_some() => {
                match substitute(&Pattern::Matcher(m.clone()), &self.captures) {
                    Ok(v) => Some(id_key(Some(&v))),
                    Err(e) => {
                        self.fail(
                            name,
                            FailureKind::Transcript,
                            format!("cannot resolve the expected id: {e}"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.fail(
                    name,
                    FailureKind::Transcript,
                    "an expected frame's `id` must be a literal or a `$ref`",
                );
                None
            }
        }
    }

    async fn expect(&mut self, name: &str, pattern: &Pattern) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.ensure_open(name).await;
        }
        if let Pattern::Array(replies) = pattern {
            self.expect_batch(name, pattern, replies).await;
            return;
        }
        let Some(id) = self.expected_id(name, pattern) else {
            return;
        };
        let is_event = pattern.has_member("event");
        let what = describe_expected(pattern, &id);
        let waited = self
            .await_frame(name, pattern, &what, "nothing arrived", |runner| {
                runner.find(name, pattern, is_event, &id)
            })
            .await;
        if let Some(received) = waited {
            self.report_differences(name, &what, pattern, &received.frame);
        }
    }

    /// Waits until `pick` chooses a buffered frame of connection `name` and takes it out of
    /// the buffer. When the connection closes or the timeout passes first, reports `what` as
    /// missing (`nothing` says what did not arrive) and returns `None`.
    async fn await_frame(
        &mut self,
        name: &str,
        pattern: &Pattern,
        what: &str,
        nothing: &str,
        pick: impl Fn(&Self) -> Option<usize>,
    ) -> Option<Received> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            if let Some(index) = pick(self) {
                return Some(self.conns.get_mut(name)?.buffer.remove(index));
            }
            let message = if let Some(code) = self.conns.get(name).and_then(|c| c.closed) {
                format!(
                    "{what}: the connection closed ({}) before it arrived",
                    close_text(code)
                )
            } else if !self.pump(deadline).await {
                format!(
                    "{what}: {nothing} within {} ms",
                    self.options.timeout.as_millis()
                )
            } else {
                continue;
            };
            self.fail(name, FailureKind::Missing, message).expected = Some(pattern.describe());
            return None;
        }
    }

    /// Matches a received frame (or aligned batch) against the step's pattern and reports
    /// every difference.
    fn report_differences(&mut self, name: &str, what: &str, pattern: &Pattern, received: &Value) {
        for d in match_value(pattern, received, &mut self.captures) {
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

    /// The buffered frame a step corresponds to: in order, same kind and id; in loose mode the
    /// first such frame that matches.
    fn find(&self, name: &str, pattern: &Pattern, is_event: bool, id: &str) -> Option<usize> {
        let conn = self.conns.get(name)?;
        let mut candidates = conn
            .buffer
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_batch && r.is_event == is_event && r.id == id);
        if self.options.loose {
            candidates
                .find(|(_, r)| {
                    let mut trial = self.captures.clone();
                    match_value(pattern, &r.frame, &mut trial).is_empty()
                })
                .map(|(i, _)| i)
        } else {
            candidates.next().map(|(i, _)| i)
        }
    }

    /// The buffered batch reply a step corresponds to: the next array frame; in loose mode the
    /// first one that matches.
    fn find_batch(&self, name: &str, pattern: &Pattern, ids: &[String]) -> Option<usize> {
        let conn = self.conns.get(name)?;
        let mut batches = conn.buffer.iter().enumerate().filter(|(_, r)| r.is_batch);
        if self.options.loose {
            batches
                .find(|(_, r)| {
                    align_batch(ids, &r.frame).is_ok_and(|aligned| {
                        let mut trial = self.captures.clone();
                        match_value(pattern, &aligned, &mut trial).is_empty()
                    })
                })
                .map(|(i, _)| i)
        } else {
            batches.next().map(|(i, _)| i)
        }
    }

    /// A batch reply: the next array frame, its replies paired with the expected ones by id
    /// (replies may come in any order; replies with the same id pair in order).
    async fn expect_batch(&mut self, name: &str, pattern: &Pattern, replies: &[Pattern]) {
        let mut ids = Vec::with_capacity(replies.len());
        for reply in replies {
            let Some(id) = self.expected_id(name, reply) else {
                return;
            };
            ids.push(id);
        }
        let what = format!("batch reply to requests {}", ids.join(", "));
        let waited = self
            .await_frame(name, pattern, &what, "no array frame arrived", |runner| {
                runner.find_batch(name, pattern, &ids)
            })
            .await;
        let Some(received) = waited else {
            return;
        };
        match align_batch(&ids, &received.frame) {
            Ok(aligned) => self.report_differences(name, &what, pattern, &aligned),
            Err(message) => {
                let f = self.fail(name, FailureKind::Mismatch, format!("{what}: {message}"));
                f.expected = Some(pattern.describe());
                f.received = Some(received.frame);
            }
        }
    }

    fn report_leftovers(&mut self, name: &str, why: &str) {
        if self.options.loose {
            if let Some(conn) = self.conns.get_mut(name) {
                conn.buffer.clear();
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        let leftovers: Vec<Received> = conn.buffer.drain(..).collect();
        for r in leftovers {
            let what = if r.is_batch {
                format!(
                    "batch reply (an array of {})",
                    r.frame.as_array().map_or(0, Vec::len)
                )
            } else if r.is_event {
                format!(
                    "event `{}` for request {}",
                    r.frame.get("event").and_then(Value::as_str).unwrap_or("?"),
                    r.id
                )
            } else {
                format!("reply to request {}", r.id)
            };
            self.fail(name, FailureKind::Unexpected, format!("{what} {why}"))
                .received = Some(r.frame);
        }
    }

    async fn expect_silence(&mut self, only: Option<&str>, window: Duration) {
        let names: Vec<String> = match only {
            Some(n) => vec![n.to_owned()],
            None => self.conns.keys().cloned().collect(),
        };
        for n in &names {
            self.report_leftovers(n, "arrived where the transcript expects silence");
        }
        let deadline = Instant::now() + window;
        while self.pump(deadline).await {
            for n in &names {
                self.report_leftovers(n, "arrived where the transcript expects silence");
            }
        }
    }

    async fn expect_close(&mut self, name: &str, code: Option<u16>) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` was never opened"),
            );
            return;
        }
        let deadline = Instant::now() + self.options.timeout;
        loop {
            if let Some(got) = self.conns.get(name).and_then(|c| c.closed) {
                self.report_leftovers(name, "arrived before the close");
                if let Some(expected) = code
                    && got != Some(expected)
                {
                    self.fail(
                        name,
                        FailureKind::Close,
                        format!("closed with {}, expected code {expected}", close_text(got)),
                    )
                    .expected = Some(Value::from(expected));
                }
                return;
            }
            if !self.pump(deadline).await {
                self.report_leftovers(name, "arrived while waiting for the close");
                self.fail(
                    name,
                    FailureKind::Close,
                    format!(
                        "the connection stayed open for {} ms; expected the server to close it{}",
                        self.options.timeout.as_millis(),
                        code.map(|c| format!(" with {c}")).unwrap_or_default()
                    ),
                );
                return;
            }
        }
    }

    async fn close(&mut self, name: &str, code: u16) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` was never opened"),
            );
            return;
        }
        self.report_leftovers(name, "arrived before the client closed the connection");
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        if conn.closed.is_some() {
            self.fail(
                name,
                FailureKind::Close,
                "the server had already closed the connection",
            );
            return;
        }
        conn.closing = true;
        if let Some(client) = &conn.client {
            client.close(code);
        }
        let deadline = Instant::now() + self.options.timeout;
        while self.conns.get(name).is_some_and(|c| c.closed.is_none()) {
            if !self.pump(deadline).await {
                self.fail(
                    name,
                    FailureKind::Close,
                    "the server did not answer the close handshake",
                );
                return;
            }
        }
    }

    async fn finish(&mut self) {
        let settle = Instant::now() + self.options.settle;
        while self.pump(settle).await {}
        let mut names: Vec<String> = self.conns.keys().cloned().collect();
        names.sort();
        for name in &names {
            self.report_leftovers(name, "arrived but no step expects it");
        }
        for name in &names {
            if let Some(conn) = self.conns.get_mut(name)
                && conn.closed.is_none()
            {
                conn.closing = true;
                if let Some(client) = &conn.client {
                    client.close(1000);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self
            .conns
            .values()
            .any(|c| c.client.is_some() && c.closed.is_none())
        {
            if !self.pump(deadline).await {
                break;
            }
        }
    }
}

/// The replies of a received batch in the order of the expected ids (`ids` as [`id_key`]
/// writes them), or why they cannot be paired: a reply missing, or one no expected reply has.
fn align_batch(ids: &[String], received: &Value) -> Result<Value, String> {
    let Value::Array(items) = received else {
        return Err("expected an array".into());
    };
    let mut left: Vec<Option<&Value>> = items.iter().map(Some).collect();
    let mut aligned = Vec::with_capacity(ids.len());
    for id in ids {
        let slot = left
            .iter_mut()
            .find(|r| r.is_some_and(|r| id_key(r.get("id")) == *id));
        match slot.and_then(Option::take) {
            Some(reply) => aligned.push(reply.clone()),
            None => {
                return Err(format!(
                    "no reply to request {id} in it (it holds replies to {})",
                    items
                        .iter()
                        .map(|r| id_key(r.get("id")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    let extra: Vec<String> = left.iter().flatten().map(|r| id_key(r.get("id"))).collect();
    if !extra.is_empty() {
        return Err(format!(
            "it also holds replies to {}, which the transcript does not expect",
            extra.join(", ")
        ));
    }
    Ok(Value::Array(aligned))
}

fn close_text(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("code {c}"),
        None => "without a close code".to_owned(),
    }
}

fn describe_expected(pattern: &Pattern, id: &str) -> String {
    match pattern.literal_member("event") {
        Some(Value::String(e)) => format!("event `{e}` for request {id}"),
        _ if pattern.has_member("event") => format!("event for request {id}"),
        _ => {
            let which = if pattern.has_member("error") {
                "error reply"
            } else {
                "reply"
            };
            format!("{which} to request {id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_replies_pair_by_id_in_any_order() {
        let ids = [
            "1".to_owned(),
            "null".to_owned(),
            "\"a\"".to_owned(),
            "null".to_owned(),
        ];
        let received = json!([
            {"id": null, "error": {"code": -2, "n": 1}},
            {"id": "a", "result": {}},
            {"id": 1, "result": {}},
            {"id": null, "error": {"code": -2, "n": 2}}
        ]);
        let aligned = align_batch(&ids, &received).unwrap();
        assert_eq!(aligned[0]["id"], 1);
        assert_eq!(aligned[1]["error"]["n"], 1, "same ids pair in order");
        assert_eq!(aligned[2]["id"], "a");
        assert_eq!(aligned[3]["error"]["n"], 2);
        let e = align_batch(&ids[..2], &received).unwrap_err();
        assert!(e.contains("also holds replies to \"a\""), "{e}");
        let e = align_batch(&["2".to_owned()], &received).unwrap_err();
        assert!(e.contains("no reply to request 2"), "{e}");
        assert!(align_batch(&ids, &json!({"id": 1})).is_err());
    }
}
