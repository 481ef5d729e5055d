//! Results of any mode, and their three renderings: readable text, JSON (`--json`) and JUnit
//! XML (`--junit FILE`, one test case per transcript, for CI dashboards).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// What kind of difference a failure is (stable names, for tools that read `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// A frame arrived but differs from the expected one.
    Mismatch,
    /// An expected frame (or close) did not arrive in time.
    Missing,
    /// A frame arrived that no step expects.
    Unexpected,
    /// A frame on the wire (or in a transcript) breaks the spec's schemas.
    Spec,
    /// A frame arrived out of the protocol's order (an event after its request's reply, a gap
    /// in `seq`).
    Order,
    /// The connection closed (or did not) differently than expected.
    Close,
    /// The connection could not be opened as the transcript says.
    Connect,
    /// The transcript itself cannot be played.
    Transcript,
}

/// One difference.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Transcript line of the step during which it was found (0: after the last step).
    pub line: usize,
    pub kind: FailureKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    /// JSON path inside the frame, dotted from its root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
}

impl Failure {
    pub fn new(line: usize, kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            line,
            kind,
            conn: None,
            path: None,
            message: message.into(),
            expected: None,
            received: None,
        }
    }

    pub fn conn(mut self, conn: &str) -> Self {
        self.conn = Some(conn.to_owned());
        self
    }

    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn expected(mut self, v: Value) -> Self {
        self.expected = Some(v);
        self
    }

    pub fn received(mut self, v: Value) -> Self {
        self.received = Some(v);
        self
    }

    /// One line: `line 7 [main] mismatch at result.uptime: expected integer, received string`.
    pub fn headline(&self) -> String {
        let mut s = String::new();
        if self.line > 0 {
            let _ = write!(s, "line {} ", self.line);
        } else {
            s.push_str("end ");
        }
        if let Some(c) = &self.conn {
            let _ = write!(s, "[{c}] ");
        }
        let _ = write!(s, "{}", kind_name(self.kind));
        if let Some(p) = &self.path {
            let at = if p.is_empty() { "(frame)" } else { p };
            let _ = write!(s, " at {at}");
        }
        let _ = write!(s, ": {}", self.message);
        s
    }
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Mismatch => "mismatch",
        FailureKind::Missing => "missing",
        FailureKind::Unexpected => "unexpected",
        FailureKind::Spec => "spec",
        FailureKind::Order => "order",
        FailureKind::Close => "close",
        FailureKind::Connect => "connect",
        FailureKind::Transcript => "transcript",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// The outcome of one transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptReport {
    pub name: String,
    pub path: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
}

impl TranscriptReport {
    pub fn new(name: &str, path: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: path.to_owned(),
            status: Status::Passed,
            skip_reason: None,
            duration_ms: 0,
            failures: Vec::new(),
        }
    }

    pub fn skipped(name: &str, path: &str, reason: String) -> Self {
        Self {
            status: Status::Skipped,
            skip_reason: Some(reason),
            ..Self::new(name, path)
        }
    }

    /// Sets the status from the failures and the duration.
    pub fn finish(mut self, elapsed: Duration) -> Self {
        self.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if self.status != Status::Skipped {
            self.status = if self.failures.is_empty() {
                Status::Passed
            } else {
                Status::Failed
            };
        }
        self
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The outcome of one command.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `run`, `serve` or `validate`.
    pub mode: String,
    /// The gateway URL, listen address or "transcripts".
    pub target: String,
    pub spec_version: String,
    pub summary: Summary,
    pub transcripts: Vec<TranscriptReport>,
}

impl Report {
    pub fn new(
        mode: &str,
        target: &str,
        spec_version: &str,
        transcripts: Vec<TranscriptReport>,
    ) -> Self {
        let mut summary = Summary::default();
        for t in &transcripts {
            match t.status {
                Status::Passed => summary.passed += 1,
                Status::Failed => summary.failed += 1,
                Status::Skipped => summary.skipped += 1,
            }
        }
        Self {
            mode: mode.to_owned(),
            target: target.to_owned(),
            spec_version: spec_version.to_owned(),
            summary,
            transcripts,
        }
    }

    pub fn passed(&self) -> bool {
        self.summary.failed == 0
    }

    /// Readable text: one line per transcript, failures indented with expected and received.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for t in &self.transcripts {
            match t.status {
                Status::Passed => {
                    let _ = writeln!(out, "PASS {} ({} ms)", t.name, t.duration_ms);
                }
                Status::Skipped => {
                    let _ = writeln!(
                        out,
                        "SKIP {}: {}",
                        t.name,
                        t.skip_reason.as_deref().unwrap_or("")
                    );
                }
                Status::Failed => {
                    let _ = writeln!(out, "FAIL {} ({}, {} ms)", t.name, t.path, t.duration_ms);
                    for f in &t.failures {
                        let _ = writeln!(out, "  {}", f.headline());
                        if let Some(e) = &f.expected {
                            let _ = writeln!(out, "      expected: {e}");
                        }
                        if let Some(r) = &f.received {
                            let _ = writeln!(out, "      received: {r}");
                        }
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "{}: {} passed, {} failed, {} skipped ({} against {}, spec {})",
            if self.passed() { "ok" } else { "FAILED" },
            self.summary.passed,
            self.summary.failed,
            self.summary.skipped,
            self.mode,
            self.target,
            self.spec_version,
        );
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// JUnit XML: one `<testsuite>` for the command, one `<testcase>` per transcript.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total_ms: u64 = self.transcripts.iter().map(|t| t.duration_ms).sum();
        let _ = writeln!(
            out,
            "<testsuites name=\"flynn-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\">",
            self.transcripts.len(),
            self.summary.failed,
            self.summary.skipped,
            seconds(total_ms)
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\">",
            xml(&format!("{} {}", self.mode, self.target)),
            self.transcripts.len(),
            self.summary.failed,
            self.summary.skipped,
            seconds(total_ms)
        );
        for t in &self.transcripts {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"flynn-conformance.{}\" file=\"{}\" time=\"{}\"",
                xml(&t.name),
                xml(&self.mode),
                xml(&t.path),
                seconds(t.duration_ms)
            );
            match t.status {
                Status::Passed => out.push_str("/>\n"),
                Status::Skipped => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(t.skip_reason.as_deref().unwrap_or(""))
                    );
                }
                Status::Failed => {
                    out.push_str(">\n");
                    for f in &t.failures {
                        let mut body = f.headline();
                        if let Some(e) = &f.expected {
                            let _ = write!(body, "\nexpected: {e}");
                        }
                        if let Some(r) = &f.received {
                            let _ = write!(body, "\nreceived: {r}");
                        }
                        let _ = writeln!(
                            out,
                            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                            kind_name(f.kind),
                            xml(&f.headline()),
                            xml(&body)
                        );
                    }
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Escapes text for XML attributes and content (control characters other than tab and
/// newline are not allowed in XML 1.0 and are replaced).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Report {
        let mut failed = TranscriptReport::new("system-info", "t/system-info.jsonl");
        failed.failures.push(
            Failure::new(
                3,
                FailureKind::Mismatch,
                "expected integer, received string \"soon\"",
            )
            .conn("main")
            .at("result.uptime")
            .expected(json!({"$type": "integer"}))
            .received(json!("soon")),
        );
        let failed = failed.finish(Duration::from_millis(12));
        let passed = TranscriptReport::new("a<b", "t/a.jsonl").finish(Duration::from_millis(3));
        let skipped = TranscriptReport::skipped("auth", "t/auth.jsonl", "needs a token".into());
        Report::new("run", "ws://x/", "1.1.0", vec![failed, passed, skipped])
    }

    #[test]
    fn text_names_the_path_and_both_values() {
        let r = sample();
        assert!(!r.passed());
        let text = r.to_text();
        assert!(text.contains("FAIL system-info"), "{text}");
        assert!(
            text.contains("line 3 [main] mismatch at result.uptime"),
            "{text}"
        );
        assert!(text.contains("expected: {\"$type\":\"integer\"}"), "{text}");
        assert!(text.contains("received: \"soon\""), "{text}");
        assert!(text.contains("1 passed, 1 failed, 1 skipped"), "{text}");
    }

    #[test]
    fn json_and_junit_carry_the_same_facts() {
        let r = sample();
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["transcripts"][0]["failures"][0]["path"], "result.uptime");
        assert_eq!(v["transcripts"][0]["failures"][0]["kind"], "mismatch");
        let x = r.to_junit();
        assert!(x.contains("<testcase name=\"system-info\""), "{x}");
        assert!(x.contains("<failure type=\"mismatch\""), "{x}");
        assert!(x.contains("name=\"a&lt;b\""), "{x}");
        assert!(x.contains("<skipped message=\"needs a token\"/>"), "{x}");
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
    }
}
