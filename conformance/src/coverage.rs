//! What the transcripts cover: which transcript shows each method answered (and its documented
//! example sent), each event, each error code and each feature tag (auth paths, queue modes,
//! overflow policies, cancel, tool approval, bad frames). Rendered as COVERAGE.md; anything
//! uncovered that is not an accepted exception is a gap, and gaps fail `coverage --check`.
//! The HTTP routes: [`crate::coverage_http`].

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

pub use crate::coverage_exceptions::{CodeException, Exceptions, ExceptionsError, RouteException};
use crate::coverage_http::HttpCoverage;
use crate::pattern::{Captures, Pattern, json_equal, substitute};
use crate::spec::Spec;
use crate::transcript::{Outgoing, StepKind, Transcript};
use crate::wirecheck::id_key;

/// Feature tags every suite must cover, with what a transcript tagged so shows.
pub const REQUIRED_TAGS: &[(&str, &str)] = &[
    (
        "auth:none",
        "a gateway without a token accepts a connection that presents none",
    ),
    ("auth:header", "`Authorization: Bearer <token>` is accepted"),
    (
        "auth:subprotocol",
        "the browser form `flynn.bearer.<base64url>` is accepted and `flynn.v1` selected",
    ),
    (
        "auth:missing",
        "no credentials: one error frame -4, then close 1008",
    ),
    (
        "auth:wrong",
        "a wrong token: one error frame -5, then close 1008",
    ),
    (
        "queue:followup",
        "queue mode followup: queued messages run one by one",
    ),
    (
        "queue:collect",
        "queue mode collect: queued messages run as one turn",
    ),
    (
        "queue:steer",
        "queue mode steer: a message joins the active run",
    ),
    (
        "queue:steer_backlog",
        "queue mode steer_backlog: steered and also queued",
    ),
    (
        "queue:interrupt",
        "queue mode interrupt: the active run is stopped for the newest message",
    ),
    (
        "overflow:drop_old",
        "a full queue drops its oldest message (code 3)",
    ),
    (
        "overflow:drop_new",
        "a full queue rejects the new message (code 3)",
    ),
    ("cancel", "agent.cancel stops the active run (code 4)"),
    ("approval:granted", "an approved tool call runs"),
    ("approval:refused", "a refused tool call is skipped"),
    (
        "frame:invalid-json",
        "a frame that is not JSON: -1 with id null",
    ),
    ("frame:not-object", "JSON that is not an object: -2"),
    (
        "frame:missing-method",
        "a request without `method`: -2 on `method`",
    ),
    (
        "frame:bad-id",
        "an id that is neither integer nor string: -2 on `id`",
    ),
    ("frame:unknown-method", "an unknown method: -3"),
    (
        "frame:wrong-param-type",
        "a param of the wrong type: -2 naming it",
    ),
    ("frame:unknown-param", "an unknown param: -2 naming it"),
];

/// Further tags transcripts may carry.
pub const OPTIONAL_TAGS: &[(&str, &str)] = &[
    (
        "resume:attach",
        "a second connection attaches to a running turn and gets the rest exactly once (runSeq)",
    ),
    (
        "resume:idempotent",
        "a repeated idempotencyKey joins the turn or gets its stored reply; another message is -2",
    ),
    (
        "resume:grace",
        "a turn is attachable for the grace period only; its key outlives it",
    ),
    (
        "approval:timeout",
        "an unanswered approval times out and the call is skipped",
    ),
    (
        "cancel:queued",
        "cancel rejects queued requests (code 4, queue code `cancelled`)",
    ),
    (
        "cancel:command",
        "the `/stop` chat command cancels like agent.cancel",
    ),
    (
        "frame:array-params",
        "by-position (array) params: -2 on `params`",
    ),
    (
        "frame:bad-jsonrpc",
        "a `jsonrpc` other than \"2.0\": -2 on `jsonrpc`",
    ),
    (
        "frame:missing-param",
        "a missing required param: -2 naming it",
    ),
    (
        "jsonrpc:echo",
        "`\"jsonrpc\": \"2.0\"` is echoed on replies and events",
    ),
    ("ids:string", "string request ids are echoed unchanged"),
    (
        "jsonrpc:params-empty",
        "`params: []` (what JSON-RPC libraries send) means no params",
    ),
    (
        "jsonrpc:notification",
        "a notification (`\"jsonrpc\": \"2.0\"`, no id) runs and gets nothing back",
    ),
    (
        "jsonrpc:batch",
        "a batch (JSON array) is answered with one array of replies",
    ),
    (
        "frame:duplicate-member",
        "a member given twice: -2 naming it",
    ),
    ("multi-connection", "several connections in one transcript"),
    (
        "http:auth",
        "HTTP credentials: 401 -4 without, 401 -5 wrong, 403 -6 without the route's scope",
    ),
    (
        "http:unknown-route",
        "a path no route serves: the JSON 404 with code -3",
    ),
    (
        "http:misdirected-host",
        "a Host the gateway does not answer to: 421 with code -5 (DNS rebinding)",
    ),
    ("queue:commands", "the `/queue` chat commands"),
    ("context", "context pressure (`context_warning`)"),
    ("attachments", "attachments in and out"),
    ("nodes", "companion node registration and node methods"),
    (
        "operator",
        "operator methods (backends, docker, observability)",
    ),
    (
        "scopes:read-only",
        "a read-only token reads; other scopes are refused with -6 naming the scope",
    ),
    (
        "scopes:chat",
        "a chat token chats; tools and configuration are refused with -6",
    ),
    (
        "scopes:operator",
        "an operator token runs tools; configuration changes are refused with -6",
    ),
];

/// Whether `tag` is a known `covers` tag.
pub fn known_tag(tag: &str) -> bool {
    REQUIRED_TAGS
        .iter()
        .chain(OPTIONAL_TAGS)
        .any(|(t, _)| *t == tag)
}

#[derive(Debug, Clone, Default)]
pub struct MethodCoverage {
    /// Transcripts that expect a `result` for it.
    pub results: BTreeSet<String>,
    /// Transcripts that accept a `result` or an error (`"$optional"` on both), for methods whose
    /// outcome depends on the machine (operator methods without systemd or docker).
    pub loose_results: BTreeSet<String>,
    /// Transcripts that expect an error reply for it.
    pub errors: BTreeSet<String>,
    /// Transcripts that send one of its documented examples' params.
    pub examples: BTreeSet<String>,
}

/// Who covers what.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub methods: BTreeMap<String, MethodCoverage>,
    pub events: BTreeMap<String, BTreeSet<String>>,
    pub codes: BTreeMap<i64, BTreeSet<String>>,
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// The `x-http` endpoints.
    pub http: HttpCoverage,
}

fn params_of(frame: &Value) -> Value {
    match frame.get("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p) => p.clone(),
    }
}

impl Coverage {
    pub fn compute(spec: &Spec, transcripts: &[Transcript]) -> Self {
        let mut c = Coverage::default();
        for name in spec.methods.keys() {
            c.methods.insert(name.clone(), MethodCoverage::default());
        }
        for event in spec.event_names() {
            c.events.insert(event.clone(), BTreeSet::new());
        }
        for code in spec.errors.keys() {
            c.codes.insert(*code, BTreeSet::new());
        }
        for (tag, _) in REQUIRED_TAGS {
            c.tags.insert((*tag).to_owned(), BTreeSet::new());
        }
        for t in transcripts {
            c.add(spec, t);
        }
        c.http = HttpCoverage::compute(spec, transcripts);
        c
    }

    fn add(&mut self, spec: &Spec, t: &Transcript) {
        let name = t.name().to_owned();
        for tag in &t.header.covers {
            self.tags
                .entry(tag.clone())
                .or_default()
                .insert(name.clone());
        }
        let mut requests: HashMap<(String, String), String> = HashMap::new();
        let no_captures = Captures::default();
        for step in &t.steps {
            let conn = step.conn_name().to_owned();
            match &step.kind {
                StepKind::Send { frame, .. } => {
                    let value = match frame {
                        Outgoing::Raw(text) => serde_json::from_str::<Value>(text).ok(),
                        Outgoing::Frame { pattern, .. } => substitute(pattern, &no_captures).ok(),
                    };
                    // A batch (an array) sends each of its entries.
                    let values = match value {
                        Some(Value::Array(entries)) => entries,
                        Some(value) => vec![value],
                        None => continue,
                    };
                    for value in values {
                        let Some(method) = value.get("method").and_then(Value::as_str) else {
                            continue;
                        };
                        // A notification (no id) gets no reply to attribute.
                        if let Some(id) = value.get("id").filter(|id| !id.is_null()) {
                            requests.insert((conn.clone(), id_key(Some(id))), method.to_owned());
                        }
                        if let Some(m) = spec.methods.get(method) {
                            let params = params_of(&value);
                            if m.example_params.iter().any(|e| json_equal(e, &params))
                                && let Some(mc) = self.methods.get_mut(method)
                            {
                                mc.examples.insert(name.clone());
                            }
                        }
                    }
                }
                // A batch reply (an array) counts reply by reply.
                StepKind::Expect {
                    pattern: Pattern::Array(replies),
                    ..
                } => {
                    for reply in replies {
                        self.add_expected(&name, reply, &conn, &requests);
                    }
                }
                StepKind::Expect { pattern, .. } => {
                    self.add_expected(&name, pattern, &conn, &requests);
                }
                _ => {}
            }
        }
    }

    /// What one expected frame of transcript `name` covers.
    fn add_expected(
        &mut self,
        name: &str,
        pattern: &Pattern,
        conn: &str,
        requests: &HashMap<(String, String), String>,
    ) {
        let name = name.to_owned();
        let id = match pattern.member("id") {
            Some(Pattern::Scalar(v)) => id_key(Some(v)),
            _ => return,
        };
        let method = requests.get(&(conn.to_owned(), id)).cloned();
        if let Some(Value::String(event)) = pattern.literal_member("event") {
            self.events
                .entry(event.clone())
                .or_default()
                .insert(name.clone());
            if event == "error"
                && let Some(code) = pattern
                    .member("data")
                    .and_then(|d| d.literal_member("code"))
                    .and_then(Value::as_i64)
            {
                self.codes.entry(code).or_default().insert(name.clone());
            }
        } else if let Some(error) = pattern
            .member("error")
            .filter(|_| !pattern.has_member("result"))
        {
            if let Some(code) = error.literal_member("code").and_then(Value::as_i64) {
                self.codes.entry(code).or_default().insert(name.clone());
            }
            if let Some(mc) = method.and_then(|m| self.methods.get_mut(&m)) {
                mc.errors.insert(name.clone());
            }
        } else if let Some(result) = pattern.member("result") {
            let loose = match result {
                Pattern::Object { optional, .. } => *optional,
                Pattern::Matcher(m) => m.optional,
                _ => false,
            };
            if let Some(mc) = method.and_then(|m| self.methods.get_mut(&m)) {
                if loose {
                    mc.loose_results.insert(name);
                } else {
                    mc.results.insert(name);
                }
            }
        }
    }

    /// What is not covered and not excepted, one line each.
    pub fn gaps(&self, exceptions: &Exceptions) -> Vec<String> {
        let mut gaps = Vec::new();
        for (method, mc) in &self.methods {
            if mc.results.is_empty() && mc.loose_results.is_empty() {
                gaps.push(format!("method `{method}`: no transcript expects a result"));
            }
            if mc.examples.is_empty() {
                gaps.push(format!(
                    "method `{method}`: no transcript sends a documented example"
                ));
            }
        }
        for (event, who) in &self.events {
            if who.is_empty() {
                gaps.push(format!("event `{event}`: no transcript expects it"));
            }
        }
        for (code, who) in &self.codes {
            if who.is_empty() && exceptions.reason(*code).is_none() {
                gaps.push(format!("error code {code}: no transcript expects it"));
            }
        }
        for (tag, _) in REQUIRED_TAGS {
            if self.tags.get(*tag).is_none_or(BTreeSet::is_empty) {
                gaps.push(format!("feature `{tag}`: no transcript covers it"));
            }
        }
        for c in &exceptions.codes {
            if self.codes.get(&c.code).is_some_and(|who| !who.is_empty()) {
                gaps.push(format!("error code {}: excepted as not producible, but a transcript expects it; drop the exception", c.code));
            }
        }
        gaps.extend(self.http.gaps(exceptions));
        gaps
    }

    /// COVERAGE.md.
    pub fn to_markdown(&self, spec: &Spec, exceptions: &Exceptions) -> String {
        let mut out = String::new();
        out.push_str("# Conformance coverage\n\n");
        out.push_str("<!-- Generated by `cargo run -p flynn-conformance -- coverage conformance/transcripts --exceptions conformance/coverage-exceptions.json --out conformance/COVERAGE.md`. Do not edit by hand. -->\n\n");
        let _ = writeln!(
            out,
            "Spec {}: {} methods, {} events, {} error codes, {} required feature tags. Which transcript (in `transcripts/`) covers what.\n",
            spec.version,
            self.methods.len(),
            self.events.len(),
            self.codes.len(),
            REQUIRED_TAGS.len()
        );
        self.write_methods(&mut out);
        out.push_str("\n## Events\n\n| event | expected in |\n| --- | --- |\n");
        for (event, who) in &self.events {
            let _ = writeln!(out, "| `{event}` | {} |", list(who));
        }
        self.write_codes(&mut out, spec, exceptions);
        self.write_features(&mut out);
        self.http.write_markdown(&mut out, exceptions);
        out.push_str("\n## Gaps\n\n");
        let gaps = self.gaps(exceptions);
        if gaps.is_empty() {
            out.push_str(
                "None: every method, event, error code, required feature and HTTP route is covered.\n",
            );
        } else {
            for g in gaps {
                let _ = writeln!(out, "- {g}");
            }
        }
        out
    }

    /// The `## Methods` table.
    fn write_methods(&self, out: &mut String) {
        out.push_str("## Methods\n\n| method | result expected in | error replies in | documented example sent in |\n| --- | --- | --- | --- |\n");
        for (method, mc) in &self.methods {
            let errors = if mc.errors.is_empty() {
                "-".to_owned()
            } else {
                list(&mc.errors)
            };
            let mut results = if mc.results.is_empty() && !mc.loose_results.is_empty() {
                String::new()
            } else {
                list(&mc.results)
            };
            let loose: BTreeSet<String> =
                mc.loose_results.difference(&mc.results).cloned().collect();
            if !loose.is_empty() {
                if !results.is_empty() {
                    results.push_str("; ");
                }
                let _ = write!(
                    results,
                    "{} (result or error, depending on the machine)",
                    list(&loose)
                );
            }
            let _ = writeln!(
                out,
                "| `{method}` | {results} | {errors} | {} |",
                list(&mc.examples)
            );
        }
    }

    /// The `## Error codes` table (an excepted, uncovered code shows its reason).
    fn write_codes(&self, out: &mut String, spec: &Spec, exceptions: &Exceptions) {
        out.push_str("\n## Error codes\n\n| code | name | expected in |\n| --- | --- | --- |\n");
        for (code, who) in &self.codes {
            let name = spec.errors.get(code).map_or("", |e| e.name.as_str());
            let cell = match exceptions.reason(*code) {
                Some(reason) if who.is_empty() => format!("not producible: {reason}"),
                _ => list(who),
            };
            let _ = writeln!(out, "| {code} | {name} | {cell} |");
        }
    }

    /// The `## Features` table: every required tag, and the optional ones some transcript
    /// covers.
    fn write_features(&self, out: &mut String) {
        out.push_str(
            "\n## Features\n\n| tag | what it shows | covered by |\n| --- | --- | --- |\n",
        );
        for (tag, what) in REQUIRED_TAGS.iter().chain(OPTIONAL_TAGS) {
            let who = self.tags.get(*tag).cloned().unwrap_or_default();
            let required = REQUIRED_TAGS.iter().any(|(t, _)| t == tag);
            if who.is_empty() && !required {
                continue;
            }
            let _ = writeln!(out, "| `{tag}` | {what} | {} |", list(&who));
        }
    }
}

/// Transcript names as a table cell (`**none**` when there are none).
fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "**none**".to_owned()
    } else {
        set.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;

    #[test]
    fn a_single_transcript_leaves_gaps_that_are_named() {
        let spec = Spec::load().unwrap();
        let t = Transcript::parse(
            Path::new("t.jsonl"),
            concat!(
                r#"{"type":"header","name":"info","covers":["cancel"]}"#,
                "\n",
                r#"{"type":"send","frame":{"id":1,"method":"system.info","params":{}}}"#,
                "\n",
                r#"{"type":"expect","frame":{"id":1,"result":{}}}"#,
                "\n",
                r#"{"type":"send","frame":{"id":2,"method":"nope"}}"#,
                "\n",
                r#"{"type":"expect","frame":{"id":2,"error":{"code":-3}}}"#,
                "\n",
            ),
        )
        .unwrap();
        let c = Coverage::compute(&spec, &[t]);
        assert!(c.methods["system.info"].results.contains("info"));
        assert!(c.methods["system.info"].examples.contains("info"));
        assert!(c.codes[&-3].contains("info"));
        let gaps = c.gaps(&Exceptions::default());
        assert!(gaps.iter().any(|g| g.contains("`agent.send`")));
        assert!(gaps.iter().any(|g| g.contains("event `done`")));
        assert!(gaps.iter().any(|g| g.contains("error code 5")));
        assert!(!gaps.iter().any(|g| g.contains("`cancel`")));
        assert!(!gaps.iter().any(|g| g.contains("method `system.info`")));
        let excepted = Exceptions {
            codes: vec![CodeException {
                code: 5,
                reason: "r".into(),
            }],
            routes: Vec::new(),
        };
        assert!(!c.gaps(&excepted).iter().any(|g| g.contains("error code 5")));
        let md = c.to_markdown(&spec, &excepted);
        assert!(md.contains("| `system.info` | `info` |"), "{md}");
        assert!(md.contains("not producible: r"));
    }

    #[test]
    fn batches_count_entry_by_entry() {
        let spec = Spec::load().unwrap();
        let t = Transcript::parse(
            Path::new("t.jsonl"),
            concat!(
                r#"{"type":"header","name":"batch","covers":["jsonrpc:batch"]}"#,
                "\n",
                r#"{"type":"send","raw":"[{\"id\":1,\"method\":\"system.info\"},{\"jsonrpc\":\"2.0\",\"method\":\"sessions.list\"},{\"id\":2,\"method\":\"nope\"}]"}"#,
                "\n",
                r#"{"type":"expect","frame":[{"id":2,"error":{"code":-3}},{"id":1,"result":{}}]}"#,
                "\n",
                r#"{"type":"send","raw":"[]"}"#,
                "\n",
                r#"{"type":"expect","frame":{"id":null,"error":{"code":-2}}}"#,
                "\n",
            ),
        )
        .unwrap();
        let c = Coverage::compute(&spec, &[t]);
        assert!(c.methods["system.info"].results.contains("batch"));
        assert!(c.codes[&-3].contains("batch"));
        assert!(c.codes[&-2].contains("batch"));
        assert!(c.tags["jsonrpc:batch"].contains("batch"));
        // The notification is answered by nothing, so the id-null error is nobody's.
        assert!(c.methods["sessions.list"].errors.is_empty());
    }
}
