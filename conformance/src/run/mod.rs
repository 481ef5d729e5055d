//! `run`: plays the client side of transcripts against a gateway and reports every step where
//! the gateway differs (server conformance).
//!
//! Matching (README.md, "How frames are matched"): a reply is found by its `id`; an event by
//! its `id` and its order among that request's events; frames of different requests may
//! interleave freely. Every frame received is also held to the spec and to the wire rules
//! ([`crate::wirecheck`]), whether or not a step expects it.
//!
//! The runner's parts: [`connect`] opens connections and sends, [`expect`] waits for and
//! matches frames, [`close`] ends connections and reports frames nobody expected;
//! `http` steps are played by [`crate::run_http`].

mod close;
mod connect;
mod expect;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::pattern::Captures;
use crate::report::{Failure, FailureKind, Report, TranscriptReport};
use crate::run_http::{self, HttpTarget};
use crate::spec::Spec;
use crate::transcript::{AuthNeed, StepKind, Transcript};
use crate::wirecheck::{ConnectionRules, id_key};
use crate::ws::{ClientConn, Incoming};

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
    pub(super) fn fail(
        &mut self,
        conn: &str,
        kind: FailureKind,
        message: impl Into<String>,
    ) -> &mut Failure {
        self.failures
            .push(Failure::new(self.line, kind, message).conn(conn));
        let last = self.failures.len() - 1;
        &mut self.failures[last]
    }

    /// Takes one incoming event (waiting until `deadline`); false on timeout.
    pub(super) async fn pump(&mut self, deadline: Instant) -> bool {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((name, incoming))) = tokio::time::timeout(wait, self.events_rx.recv()).await
        else {
            return false;
        };
        self.dispatch(&name, incoming);
        true
    }

    pub(super) fn dispatch(&mut self, name: &str, incoming: Incoming) {
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
}

fn close_text(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("code {c}"),
        None => "without a close code".to_owned(),
    }
}
