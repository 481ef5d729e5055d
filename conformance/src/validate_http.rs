//! `validate` for `http` steps, without a gateway: the route is declared in `x-http` (or the
//! step says it knowingly is not), a JSON request body fits the route's request schema (and
//! one marked `malformed` does not), and the expected answer, with matchers replaced by their
//! `$example`s, obeys the same rules as a real answer ([`crate::routes`]) where the step says
//! what it expects.

use std::collections::HashSet;

use serde_json::Value;

use crate::holes::outside_holes;
use crate::http_step::{BodyExpectation, HttpBody, HttpStep};
use crate::path::JsonPath;
use crate::pattern::{Captures, concretize};
use crate::report::{Failure, FailureKind};
use crate::routes::{Answer, Route};
use crate::run_http::declared_route;
use crate::spec::Spec;

/// Checks one `http` step at transcript line `line`. `captured` holds the capture names of
/// earlier lines (this step's are added); `examples` their example values.
pub fn validate_step(
    spec: &Spec,
    step: &HttpStep,
    line: usize,
    captured: &mut HashSet<String>,
    examples: &mut Captures,
) -> Vec<Failure> {
    let label = step.label();
    let fail = |kind: FailureKind, message: String| {
        Failure::new(line, kind, format!("{label}: {message}"))
    };
    let mut failures = Vec::new();
    let (route, problem) = declared_route(spec, step);
    if let Some((kind, message)) = problem {
        failures.push(fail(kind, message));
    }
    check_body_to_send(spec, step, route, captured, examples, &fail, &mut failures);
    let mut refs = Vec::new();
    step.expected.references(&mut refs);
    let mut own = Vec::new();
    step.expected.captures(&mut own);
    for r in refs
        .iter()
        .filter(|r| !captured.contains(*r) && !own.contains(r))
    {
        failures.push(fail(
            FailureKind::Transcript,
            format!("`$ref` to `{r}`, which no earlier line captures"),
        ));
    }
    captured.extend(own);
    // A route the spec does not declare was reported above; its answer has no rules to add.
    if route.is_some() || step.undeclared {
        check_expected_answer(spec, step, route, examples, &fail, &mut failures);
    } else {
        // Still bind this step's captures to their examples, for the lines after it.
        concretize(&step.expected, examples);
    }
    failures
}

type Fail<'a> = dyn Fn(FailureKind, String) -> Failure + 'a;

/// A JSON body to send: only `$ref`s to earlier captures, and the route's request schema
/// (which a body marked `malformed` must break).
fn check_body_to_send(
    spec: &Spec,
    step: &HttpStep,
    route: Option<&Route>,
    captured: &HashSet<String>,
    examples: &Captures,
    fail: &Fail<'_>,
    failures: &mut Vec<Failure>,
) {
    let Some(HttpBody::Json { pattern, .. }) = &step.request.body else {
        return;
    };
    let mut refs = Vec::new();
    pattern.references(&mut refs);
    let mut bad = Vec::new();
    pattern.non_send_matchers(&JsonPath::root().key("body"), &mut bad);
    for p in bad {
        failures.push(
            fail(
                FailureKind::Transcript,
                "a body to send may only hold `$ref` and `$literal` matchers".into(),
            )
            .at(p),
        );
    }
    for r in refs.iter().filter(|r| !captured.contains(*r)) {
        failures.push(fail(
            FailureKind::Transcript,
            format!("`$ref` to `{r}`, which no earlier line captures"),
        ));
    }
    let (value, holes) = concretize(pattern, &mut examples.clone());
    let holes: Vec<String> = holes.iter().map(|h| prefixed("body", h)).collect();
    let violations = route.map_or_else(Vec::new, |r| spec.http.check_request(r, &value));
    if step.malformed {
        if violations.is_empty() {
            failures.push(fail(FailureKind::Transcript, "the request is marked `malformed` but its body fits the route's request schema (or the route declares none); drop the mark or break the body".into()));
        }
    } else {
        for v in outside_holes(violations, &holes) {
            failures.push(
                fail(
                    FailureKind::Spec,
                    format!("the body to send breaks the spec: {}", v.message),
                )
                .at(v.path),
            );
        }
    }
}

/// The expected answer with its `$example`s, held to the rules of a real one where the step
/// says what it expects.
fn check_expected_answer(
    spec: &Spec,
    step: &HttpStep,
    route: Option<&Route>,
    examples: &mut Captures,
    fail: &Fail<'_>,
    failures: &mut Vec<Failure>,
) {
    let (expected, holes) = concretize(&step.expected, examples);

    let declared_type = route
        .and_then(|r| r.response(step.status))
        .and_then(|r| r.body.as_ref())
        .and_then(|b| b.content_type.clone())
        .unwrap_or_else(|| "application/json".to_owned());
    let content_type = expected
        .pointer("/headers/content-type")
        .and_then(Value::as_str)
        .map_or(declared_type, str::to_owned);
    let body = match step.body {
        BodyExpectation::Json => expected.get("body").map(Value::to_string),
        BodyExpectation::Text => expected
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned),
        BodyExpectation::Unchecked => None,
    };
    let answer = Answer {
        status: step.status,
        content_type: Some(&content_type),
        body: body.as_deref().unwrap_or_default().as_bytes(),
    };
    let violations = spec
        .check_http_response(route, &answer)
        .into_iter()
        // Expected objects are open: what they leave out is not checked here (the check of
        // `run` holds the real answer to every required member); nor is an unstated body.
        .filter(|v| !v.message.ends_with("is a required property"))
        .filter(|v| body.is_some() || v.path == "status" || v.path.starts_with("headers"));
    for v in outside_holes(violations.collect(), &holes) {
        failures.push(
            fail(
                FailureKind::Spec,
                format!("the expected answer breaks the spec: {}", v.message),
            )
            .at(v.path),
        );
    }
}

fn prefixed(base: &str, path: &str) -> String {
    if path.is_empty() {
        base.to_owned()
    } else if path.starts_with('[') {
        format!("{base}{path}")
    } else {
        format!("{base}.{path}")
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::Spec;
    use crate::transcript::Transcript;
    use crate::validate::validate;
    use std::path::Path;

    fn check(lines: &[&str]) -> Vec<String> {
        let spec = Spec::load().unwrap();
        let text = format!(
            "{{\"type\":\"header\",\"name\":\"t\"}}\n{}\n",
            lines.join("\n")
        );
        let t = Transcript::parse(Path::new("t.jsonl"), &text).unwrap();
        validate(&spec, &t).iter().map(|f| f.headline()).collect()
    }

    #[test]
    fn good_http_steps_pass() {
        let f = check(&[
            r#"{"type":"http","request":{"method":"GET","path":"/health"},"response":{"status":200,"headers":{"content-type":"application/json"},"body":{"status":"ok","uptime":{"$type":"integer","$capture":"up"}}}}"#,
            r##"{"type":"http","request":{"method":"GET","path":"/metrics"},"response":{"status":200,"text":{"$regex":"# EOF\\n$","$example":"# EOF\n"}}}"##,
            r#"{"type":"http","request":{"method":"GET","path":"/metrics","headers":{}},"response":{"status":401,"body":{"error":{"code":-4,"message":{"$type":"string"}}}}}"#,
            r#"{"type":"http","undeclared":true,"request":{"method":"GET","path":"/nope"},"response":{"status":404,"body":{"error":{"code":-3}}}}"#,
        ]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn wrong_http_steps_are_named() {
        let f = check(&[
            r#"{"type":"http","request":{"method":"GET","path":"/nope"},"response":{"status":404}}"#,
            r#"{"type":"http","undeclared":true,"request":{"method":"GET","path":"/health"},"response":{"status":200}}"#,
            r#"{"type":"http","request":{"method":"GET","path":"/health"},"response":{"status":200,"body":{"uptime":"soon"}}}"#,
            r#"{"type":"http","request":{"method":"GET","path":"/health"},"response":{"status":204}}"#,
            r#"{"type":"http","request":{"method":"GET","path":"/metrics"},"response":{"status":403,"body":{"error":{"code":7}}}}"#,
            r#"{"type":"http","request":{"method":"GET","path":"/metrics"},"response":{"status":200,"text":"x"}}"#,
        ]);
        let expect = [
            "line 2 spec: GET /nope: not declared in x-http",
            "line 3 transcript: GET /health: marked `undeclared`",
            "line 4 spec at body.uptime",
            "line 5 spec at status: GET /health: the expected answer breaks the spec: x-http declares no 204",
            "line 6 spec at body.error.code",
            "line 7 spec at text",
        ];
        assert_eq!(f.len(), expect.len(), "{f:#?}");
        for (got, want) in f.iter().zip(expect) {
            assert!(got.starts_with(want), "{got}\n  should start with\n{want}");
        }
    }
}
