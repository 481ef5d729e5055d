//! `validate`: checks transcripts without a gateway. Every frame to send is held to the
//! request schemas (and a frame marked `malformed` must really break them); every expected
//! frame, with its matchers replaced by their `$example`s, is held to the schema of the method
//! it answers, the event it names or the error code it carries. Also checked: `$ref`s point at
//! earlier captures, replies and events answer requests sent before on the same connection,
//! no event of a request is expected after its reply, nothing is played on a closed
//! connection, and `covers` tags are known. `http` steps: [`crate::validate_http`].

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use crate::coverage::known_tag;
use crate::holes::outside_holes;
use crate::path::JsonPath;
use crate::pattern::{Captures, Pattern, concretize};
use crate::report::{Failure, FailureKind, Report, TranscriptReport};
use crate::spec::{Spec, Violation};
use crate::transcript::{Outgoing, StepKind, Transcript};
use crate::validate_http::validate_step;
use crate::wirecheck::id_key;

/// Validates every transcript.
pub fn validate_all(spec: &Spec, transcripts: &[Transcript]) -> Report {
    let reports = transcripts
        .iter()
        .map(|t| {
            let started = Instant::now();
            let mut r = TranscriptReport::new(t.name(), &t.path.display().to_string());
            r.failures = validate(spec, t);
            r.finish(started.elapsed())
        })
        .collect();
    Report::new("validate", "transcripts", &spec.version, reports)
}

#[derive(Default)]
struct ConnState {
    /// id -> method of requests sent (none when the frame had no string method).
    requests: HashMap<String, Option<String>>,
    replied: HashSet<String>,
    closed: bool,
}

/// Checks one transcript; an empty list means it is valid.
pub fn validate(spec: &Spec, t: &Transcript) -> Vec<Failure> {
    let mut v = Validator {
        spec,
        failures: Vec::new(),
        captured: HashSet::new(),
        examples: Captures::default(),
    };
    v.check_covers(&t.header.covers);
    let mut conns: HashMap<String, ConnState> = HashMap::new();
    for step in &t.steps {
        if let StepKind::Http(http) = &step.kind {
            let failures = validate_step(spec, http, step.line, &mut v.captured, &mut v.examples);
            v.failures.extend(failures);
            continue;
        }
        if matches!(
            step.kind,
            StepKind::Comment | StepKind::ExpectSilence { .. }
        ) {
            continue;
        }
        let here = Here {
            line: step.line,
            name: step.conn_name(),
        };
        let conn = conns.entry(here.name.to_owned()).or_default();
        v.step(&here, conn, &step.kind);
    }
    v.failures
}

/// The line and connection a failure is reported at.
struct Here<'a> {
    line: usize,
    name: &'a str,
}

impl Here<'_> {
    fn fail(&self, kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure::new(self.line, kind, message).conn(self.name)
    }
}

/// What the checks of one transcript carry from step to step (besides the connections).
struct Validator<'a> {
    spec: &'a Spec,
    failures: Vec<Failure>,
    /// Names captured by earlier lines.
    captured: HashSet<String>,
    /// The `$example`s of the captures so far, what `$ref`s stand for.
    examples: Captures,
}

impl Validator<'_> {
    fn check_covers(&mut self, covers: &[String]) {
        for tag in covers {
            if !known_tag(tag) {
                self.failures.push(Failure::new(1, FailureKind::Transcript, format!(
                    "unknown `covers` tag `{tag}`; the known tags are listed in README.md (Coverage)"
                )));
            }
        }
    }

    /// Checks one WebSocket step on its connection.
    fn step(&mut self, here: &Here<'_>, conn: &mut ConnState, kind: &StepKind) {
        if conn.closed {
            self.failures.push(here.fail(
                FailureKind::Transcript,
                format!("connection `{}` is already closed at this step", here.name),
            ));
            return;
        }
        match kind {
            StepKind::Comment
            | StepKind::ExpectSilence { .. }
            | StepKind::Connect { .. }
            | StepKind::Http(_) => {}
            StepKind::ExpectClose { .. } | StepKind::Close { .. } => conn.closed = true,
            StepKind::Send {
                frame: Outgoing::Raw(text),
                ..
            } => note_raw_requests(conn, text),
            StepKind::Send {
                frame: Outgoing::Frame { pattern, .. },
                malformed,
            } => self.send_frame(here, conn, pattern, *malformed),
            StepKind::Expect { pattern, .. } => self.expect(here, conn, pattern),
        }
    }

    /// A frame to send: only `$ref`/`$literal` matchers, known `$ref`s, held to the request
    /// schemas (a `malformed` one must break them), and a request id not used before.
    fn send_frame(
        &mut self,
        here: &Here<'_>,
        conn: &mut ConnState,
        pattern: &Pattern,
        malformed: bool,
    ) {
        let mut bad = Vec::new();
        pattern.non_send_matchers(&JsonPath::root(), &mut bad);
        for p in bad {
            self.failures.push(
                here.fail(
                    FailureKind::Transcript,
                    "a frame to send may only hold `$ref` and `$literal` matchers",
                )
                .at(p),
            );
        }
        let mut refs = Vec::new();
        pattern.references(&mut refs);
        self.unknown_refs(here, &refs, &[]);
        let (value, holes) = concretize(pattern, &mut self.examples.clone());
        let violations = self.spec.check_request(&value);
        let relevant = outside_holes(violations.clone(), &holes);
        if malformed {
            if violations.is_empty() {
                self.failures.push(here.fail(FailureKind::Transcript, "the frame is marked `malformed` but it is a valid request; drop the mark or break the frame"));
            }
        } else {
            for v in relevant {
                self.failures.push(
                    here.fail(
                        FailureKind::Spec,
                        format!("the frame to send breaks the spec: {}", v.message),
                    )
                    .at(v.path),
                );
            }
        }
        if let Some(id) = value.get("id").filter(|id| !id.is_null()) {
            let key = id_key(Some(id));
            if conn.requests.contains_key(&key) && !malformed {
                self.failures.push(here.fail(FailureKind::Transcript, format!("request id {key} is used twice on connection `{}`; replies could not be told apart", here.name)));
            }
            conn.replied.remove(&key);
            let method = value
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned);
            conn.requests.insert(key, method);
        }
    }

    /// Reports each `$ref` in `refs` that neither an earlier line nor `own` captures.
    fn unknown_refs(&mut self, here: &Here<'_>, refs: &[String], own: &[String]) {
        for r in refs
            .iter()
            .filter(|r| !self.captured.contains(*r) && !own.contains(r))
        {
            self.failures.push(here.fail(
                FailureKind::Transcript,
                format!("`$ref` to `{r}`, which no earlier line captures"),
            ));
        }
    }

    /// An expected frame (or batch of replies): known `$ref`s, then each reply or event.
    fn expect(&mut self, here: &Here<'_>, conn: &mut ConnState, pattern: &Pattern) {
        let mut refs = Vec::new();
        pattern.references(&mut refs);
        let mut own = Vec::new();
        pattern.captures(&mut own);
        self.unknown_refs(here, &refs, &own);
        self.captured.extend(own);
        // A batch reply (an array) is checked reply by reply, at `[i]...` paths.
        match pattern {
            Pattern::Array(items) => {
                for (index, frame) in items.iter().enumerate() {
                    self.expect_one(here, conn, frame, Some(index));
                }
            }
            single => self.expect_one(here, conn, single, None),
        }
    }

    /// One expected reply or event (`index`: its place in a batch): its id answers a request
    /// sent before, no event after its reply, and it holds to the schema of what it answers.
    fn expect_one(
        &mut self,
        here: &Here<'_>,
        conn: &mut ConnState,
        frame: &Pattern,
        index: Option<usize>,
    ) {
        let (value, holes) = concretize(frame, &mut self.examples);
        let id = match frame.member("id") {
            Some(Pattern::Scalar(v)) => Some(v.clone()),
            Some(Pattern::Matcher(m)) if m.reference.is_some() => value.get("id").cloned(),
            _ => {
                self.failures.push(
                    here.fail(
                        FailureKind::Transcript,
                        "an expected frame's `id` must be a literal or a `$ref`",
                    )
                    .at(batch_path(index, "id")),
                );
                None
            }
        };
        let key = id_key(id.as_ref());
        let sent = conn.requests.get(&key).cloned();
        let method = sent.clone().flatten();
        let is_event = frame.has_member("event");
        if id.as_ref().is_some_and(|v| !v.is_null())
            && sent.is_none()
            && !holes.iter().any(|h| h == "id")
        {
            self.failures.push(here.fail(FailureKind::Transcript, format!("expects a frame for request {key}, which was not sent before on connection `{}`", here.name)));
        }
        if is_event && conn.replied.contains(&key) {
            self.failures.push(here.fail(
                FailureKind::Transcript,
                format!("expects an event for request {key} after its reply; events come first"),
            ));
        }
        if !is_event {
            conn.replied.insert(key);
        }
        // Expected objects are open: what they leave out is not checked here (the wire check
        // of `run` holds the real frame to every required member).
        let violations: Vec<Violation> = self
            .spec
            .check_server_frame(&value, method.as_deref())
            .into_iter()
            .filter(|v| !v.message.ends_with("is a required property"))
            .collect();
        for v in outside_holes(violations, &holes) {
            self.failures.push(
                here.fail(
                    FailureKind::Spec,
                    format!("the expected frame breaks the spec: {}", v.message),
                )
                .at(batch_path(index, &v.path)),
            );
        }
    }
}

/// Notes the requests of a raw send (a batch, an array, sends each of its entries).
fn note_raw_requests(conn: &mut ConnState, text: &str) {
    let frames = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(entries)) => entries,
        Ok(frame) => vec![frame],
        Err(_) => Vec::new(),
    };
    for frame in frames {
        if let Some(id) = frame.get("id").filter(|id| !id.is_null()) {
            let method = frame
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned);
            conn.replied.remove(&id_key(Some(id)));
            conn.requests.insert(id_key(Some(id)), method);
        }
    }
}

/// `path` inside the `index`th reply of a batch (`path` itself outside a batch).
fn batch_path(index: Option<usize>, path: &str) -> String {
    match index {
        None => path.to_owned(),
        Some(index) if path.is_empty() || path.starts_with('[') => format!("[{index}]{path}"),
        Some(index) => format!("[{index}].{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(text: &str) -> Vec<Failure> {
        let spec = Spec::load().unwrap();
        let t = Transcript::parse(Path::new("t.jsonl"), text).unwrap();
        validate(&spec, &t)
    }

    const HEADER: &str = "{\"type\":\"header\",\"name\":\"t\"}\n";

    #[test]
    fn a_good_transcript_passes() {
        let f = check(&format!(
            "{HEADER}{}\n{}\n",
            r#"{"type":"send","frame":{"id":1,"method":"system.info"}}"#,
            r#"{"type":"expect","frame":{"id":1,"result":{"version":{"$type":"string"},"uptime":{"$type":"integer","$example":3},"connections":1}}}"#
        ));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn wrong_frames_are_named() {
        let f = check(&format!(
            "{HEADER}{}\n{}\n{}\n{}\n",
            r#"{"type":"send","frame":{"id":1,"method":"system.info"}}"#,
            r#"{"type":"expect","frame":{"id":1,"result":{"version":"1","uptime":"soon","connections":1}}}"#,
            r#"{"type":"send","frame":{"id":2,"method":"system.info","params":{"x":1}},"malformed":true}"#,
            r#"{"type":"send","frame":{"id":3,"method":"system.info"},"malformed":true}"#
        ));
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].path.as_deref(), Some("result.uptime"));
        assert!(f[1].message.contains("malformed"));
    }

    #[test]
    fn order_refs_and_ids_are_checked() {
        let f = check(&format!(
            "{HEADER}{}\n{}\n{}\n{}\n",
            r#"{"type":"send","frame":{"id":1,"method":"agent.send","params":{"message":"hi"}}}"#,
            r#"{"type":"expect","frame":{"id":1,"result":{"content":"x","usage":{"inputTokens":1,"outputTokens":1}}}}"#,
            r#"{"type":"expect","frame":{"id":1,"event":"done","data":{"content":"x"}}}"#,
            r#"{"type":"send","frame":{"id":2,"method":"agent.approveTool","params":{"approvalId":{"$ref":"nope"},"approved":true}}}"#
        ));
        assert!(
            f.iter().any(|f| f.message.contains("after its reply")),
            "{f:?}"
        );
        assert!(f.iter().any(|f| f.message.contains("`nope`")), "{f:?}");
        let f = check(&format!(
            "{HEADER}{}\n",
            r#"{"type":"expect","frame":{"id":7,"result":{}}}"#
        ));
        assert!(f[0].message.contains("not sent before"), "{f:?}");
    }

    #[test]
    fn batch_replies_are_checked_reply_by_reply() {
        let f = check(&format!(
            "{HEADER}{}\n{}\n",
            r#"{"type":"send","raw":"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system.info\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"system.info\"},3]"}"#,
            r#"{"type":"expect","frame":[{"id":2,"result":{"uptime":{"$type":"integer","$example":1}}},{"id":null,"error":{"code":-2}},{"id":1,"result":{"uptime":"soon"}}]}"#
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path.as_deref(), Some("[2].result.uptime"));
        let f = check(&format!(
            "{HEADER}{}\n",
            r#"{"type":"expect","frame":[{"id":7,"result":{}}]}"#
        ));
        assert!(f[0].message.contains("not sent before"), "{f:?}");
    }
}
