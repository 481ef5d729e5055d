//! `run`'s half of the `http` step: performs the request against the gateway's port, matches
//! the answer with the step's expectation and holds it to `x-http` ([`crate::routes`]).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::http_client::{self, HttpAnswer};
use crate::http_step::{BodyExpectation, HttpBody, HttpStep};
use crate::pattern::{Captures, match_value, substitute};
use crate::report::{Failure, FailureKind};
use crate::routes::{Answer, Route, is_json_media_type};
use crate::spec::Spec;
use crate::ws;

/// What the runner knows that an `http` step needs.
pub struct HttpTarget<'a> {
    /// The gateway's URL (`ws://127.0.0.1:18800/`); its path is replaced by the step's.
    pub url: &'a str,
    pub token: Option<&'a str>,
    pub timeout: Duration,
}

/// Plays one `http` step (transcript line `line`) and returns what differs.
pub async fn play(
    spec: &Spec,
    step: &HttpStep,
    line: usize,
    target: &HttpTarget<'_>,
    captures: &mut Captures,
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
    let Some((headers, body)) = build_request(
        spec,
        step,
        route,
        target.token,
        captures,
        &fail,
        &mut failures,
    ) else {
        return failures;
    };
    let answer = match http_client::send(
        target.url,
        &step.request.method,
        &step.request.path,
        &headers,
        body,
        target.timeout,
    )
    .await
    {
        Ok(answer) => answer,
        Err(e) => {
            failures.push(fail(FailureKind::Connect, e.to_string()));
            return failures;
        }
    };
    check_answer(spec, step, route, &answer, captures, &fail, &mut failures);
    failures
}

type Fail<'a> = dyn Fn(FailureKind, String) -> Failure + 'a;

/// Headers and body of a request to send.
type Request = (Vec<(String, String)>, Option<Vec<u8>>);

/// The headers and body to send, or `None` when the transcript cannot be played (a token it
/// needs is missing, a `$ref` is unknown). A JSON body is held to the route's request schema.
fn build_request(
    spec: &Spec,
    step: &HttpStep,
    route: Option<&Route>,
    token: Option<&str>,
    captures: &Captures,
    fail: &Fail<'_>,
    failures: &mut Vec<Failure>,
) -> Option<Request> {
    let headers = match request_headers(step, token) {
        Ok(h) => h,
        Err(message) => {
            failures.push(fail(FailureKind::Transcript, message));
            return None;
        }
    };
    let request = match &step.request.body {
        None => (headers, None),
        Some(HttpBody::Raw(text)) => (headers, Some(text.clone().into_bytes())),
        Some(HttpBody::Json { pattern, .. }) => match substitute(pattern, captures) {
            Ok(value) => {
                if let Some(r) = route.filter(|_| !step.malformed) {
                    for v in spec.http.check_request(r, &value) {
                        failures.push(
                            fail(
                                FailureKind::Transcript,
                                format!(
                                    "the transcript sends a body that breaks the spec: {}",
                                    v.message
                                ),
                            )
                            .at(v.path),
                        );
                    }
                }
                (
                    with_json_type(headers),
                    Some(value.to_string().into_bytes()),
                )
            }
            Err(e) => {
                failures.push(fail(
                    FailureKind::Transcript,
                    format!("cannot build the body: {e}"),
                ));
                return None;
            }
        },
    };
    Some(request)
}

/// Matches the answer with the step's expectation and holds it to `x-http`.
fn check_answer(
    spec: &Spec,
    step: &HttpStep,
    route: Option<&Route>,
    answer: &HttpAnswer,
    captures: &mut Captures,
    fail: &Fail<'_>,
    failures: &mut Vec<Failure>,
) {
    let received = received_value(answer, step.body);
    let mut differences = match_value(&step.expected, &received, captures);
    // Status first, then headers, then the body: the order a reader checks an answer in.
    differences.sort_by_key(|d| match d.path.split(['.', '[']).next() {
        Some("status") => 0,
        Some("headers") => 1,
        _ => 2,
    });
    for d in differences {
        let mut f = fail(FailureKind::Mismatch, d.message).at(d.path);
        f.expected = Some(d.expected);
        f.received = d.received;
        failures.push(f);
    }
    let content_type = answer.header("content-type");
    let checked = Answer {
        status: answer.status,
        content_type: content_type.as_deref(),
        body: &answer.body,
    };
    // A route the spec does not declare was reported above; its answer has no rules to add.
    if route.is_some() || step.undeclared {
        for v in spec.check_http_response(route, &checked) {
            failures.push(fail(FailureKind::Spec, v.message).at(v.path));
        }
    }
}

/// The `x-http` route of the step's request, and what is wrong with its declaration: a route
/// not declared (unless the step is marked `undeclared`), or one marked `undeclared` that is.
pub fn declared_route<'a>(
    spec: &'a Spec,
    step: &HttpStep,
) -> (Option<&'a Route>, Option<(FailureKind, String)>) {
    let route = spec.http.find(&step.request.method, &step.request.path);
    let problem = match (route, step.undeclared) {
        (None, false) => Some((
            FailureKind::Spec,
            "not declared in x-http (endpoints, authExceptions or protectedExtras); mark the step `\"undeclared\": true` if it shows an unknown route".to_owned(),
        )),
        (Some(r), true) => Some((
            FailureKind::Transcript,
            format!("marked `undeclared`, but x-http declares {} in {}", r.label(), r.list),
        )),
        _ => None,
    };
    (route, problem)
}

/// The step's headers with the token expanded, or the runner's default credentials.
fn request_headers(step: &HttpStep, token: Option<&str>) -> Result<Vec<(String, String)>, String> {
    match &step.request.headers {
        None => Ok(token
            .map(|t| vec![("Authorization".to_owned(), format!("Bearer {t}"))])
            .unwrap_or_default()),
        Some(headers) => headers
            .iter()
            .map(|(k, v)| {
                ws::expand_token(v, token)
                    .map(|v| (k.clone(), v))
                    .ok_or_else(|| format!("header `{k}` needs ${{TOKEN}}: pass --token"))
            })
            .collect(),
    }
}

fn with_json_type(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    headers
}

/// The answer as the JSON value steps are matched against: `{"status", "headers", "body" |
/// "text"}`. `body` is absent when the step expects JSON and the body is not JSON (the
/// mismatch then says the member is missing, and the spec check says why).
pub fn received_value(answer: &HttpAnswer, expectation: BodyExpectation) -> Value {
    let mut headers = Map::new();
    for (name, _) in &answer.headers {
        if !headers.contains_key(name)
            && let Some(value) = answer.header(name)
        {
            headers.insert(name.clone(), Value::String(value));
        }
    }
    let mut out = Map::new();
    out.insert("status".into(), Value::from(answer.status));
    out.insert("headers".into(), Value::Object(headers));
    match expectation {
        BodyExpectation::Unchecked => {}
        BodyExpectation::Json => {
            let json_typed = answer
                .header("content-type")
                .is_some_and(|t| is_json_media_type(&t));
            if let Ok(body) = serde_json::from_slice::<Value>(&answer.body) {
                out.insert("body".into(), body);
            } else if !json_typed {
                out.insert(
                    "text".into(),
                    Value::String(String::from_utf8_lossy(&answer.body).into_owned()),
                );
            }
        }
        BodyExpectation::Text => {
            out.insert(
                "text".into(),
                Value::String(String::from_utf8_lossy(&answer.body).into_owned()),
            );
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Pattern;
    use serde_json::json;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> HttpAnswer {
        HttpAnswer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_match_by_status_headers_and_body() {
        let a = answer(
            401,
            &[
                ("content-type", "application/json"),
                ("vary", "a"),
                ("vary", "b"),
            ],
            r#"{"error":{"code":-4,"message":"no"}}"#,
        );
        let received = received_value(&a, BodyExpectation::Json);
        assert_eq!(received["headers"]["vary"], "a, b");
        let expected = Pattern::compile(&json!({
            "status": 401,
            "headers": {"content-type": "application/json", "x-absent": {"$absent": true}},
            "body": {"error": {"code": -4, "message": {"$type": "string"}}}
        }))
        .unwrap();
        assert!(match_value(&expected, &received, &mut Captures::default()).is_empty());
        let wrong =
            Pattern::compile(&json!({"status": 403, "body": {"error": {"code": -6}}})).unwrap();
        let diffs = match_value(&wrong, &received, &mut Captures::default());
        let paths: Vec<&str> = diffs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["body.error.code", "status"],
            "the runner sorts them"
        );

        let text = received_value(&answer(200, &[], "# EOF\n"), BodyExpectation::Text);
        let eof =
            Pattern::compile(&json!({"status": 200, "text": {"$regex": "# EOF\\n$"}})).unwrap();
        assert!(match_value(&eof, &text, &mut Captures::default()).is_empty());
        let not_json = received_value(&answer(200, &[], "hello"), BodyExpectation::Json);
        assert!(not_json.get("body").is_none());
    }
}
