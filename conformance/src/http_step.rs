//! The `http` step (README.md, "HTTP steps"): one HTTP request to the gateway's port and the
//! answer expected, matched with the same matchers as frames.
//!
//! ```json
//! {"type":"http","request":{"method":"GET","path":"/health"},"response":{"status":200,"headers":{"content-type":"application/json"},"body":{"status":"ok"}}}
//! ```
//!
//! The answer is matched as one JSON value `{"status", "headers", "body" | "text"}`: header
//! names are lowercase (the expected ones are lowercased when loaded, so names are
//! case-insensitive), `body` is the parsed JSON body and `text` the body as a string, so
//! differences are reported at `status`, `headers["content-type"]`, `body.error.code` or
//! `text`.

use serde_json::{Map, Value};

use crate::pattern::Pattern;

/// What a request sends as its body.
#[derive(Debug, Clone)]
pub enum HttpBody {
    /// A JSON value (may hold `$ref`s), sent with `Content-Type: application/json` unless the
    /// step's headers name another.
    Json { pattern: Box<Pattern>, raw: Value },
    /// Text sent as is.
    Raw(String),
}

/// The request of an `http` step.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Uppercase (`GET`).
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Exactly these headers (`${TOKEN}` and `${TOKEN_B64URL}` expanded); `None`: the runner's
    /// default credentials (`Authorization: Bearer <--token>` when a token was given), like a
    /// WebSocket connection without a `connect` line.
    pub headers: Option<Vec<(String, String)>>,
    pub body: Option<HttpBody>,
}

/// Which form of the body the step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyExpectation {
    /// The step says nothing about the body (the spec checks still apply).
    Unchecked,
    /// `body`: a JSON body, matched like a frame.
    Json,
    /// `text`: the body as a string (`{"$regex": "# EOF\\n$"}`).
    Text,
}

/// An `http` step.
#[derive(Debug, Clone)]
pub struct HttpStep {
    pub request: HttpRequest,
    /// The expected status (also a member of `expected`).
    pub status: u16,
    pub body: BodyExpectation,
    /// `{"status", "headers"?, "body"? | "text"?}` with lowercase header names.
    pub expected: Pattern,
    /// The `response` member as written.
    pub raw_response: Value,
    /// The route is knowingly not declared in `x-http` (an unknown path, to show the 404).
    pub undeclared: bool,
    /// The request body breaks the route's request schema on purpose.
    pub malformed: bool,
}

impl HttpStep {
    /// `GET /health`.
    pub fn label(&self) -> String {
        format!("{} {}", self.request.method, self.request.path)
    }
}

/// The members an `http` line takes.
pub const MEMBERS: &[&str] = &["type", "request", "response", "undeclared", "malformed"];

fn allowed(map: &Map<String, Value>, keys: &[&str], what: &str) -> Result<(), String> {
    match map.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what}: unknown member `{k}` (it takes {})",
            keys.join(", ")
        )),
        None => Ok(()),
    }
}

fn flag(map: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match map.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("`{key}` must be a boolean, not {other}")),
    }
}

fn compile(value: &Value, what: &str) -> Result<Pattern, String> {
    Pattern::compile(value).map_err(|e| {
        let at = if e.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", e.path)
        };
        format!("{what}{at}: {}", e.message)
    })
}

/// Parses the members of an `http` line (the caller checked `type`).
pub fn parse(map: &Map<String, Value>) -> Result<HttpStep, String> {
    allowed(map, MEMBERS, "an http line")?;
    let request = match map.get("request") {
        Some(Value::Object(r)) => parse_request(r)?,
        Some(other) => return Err(format!("`request` must be an object, not {other}")),
        None => return Err("an http line needs `request` ({method, path, ...})".into()),
    };
    let raw_response = map
        .get("response")
        .cloned()
        .ok_or("an http line needs `response` ({status, headers?, body? or text?})")?;
    let Value::Object(response) = &raw_response else {
        return Err(format!("`response` must be an object, not {raw_response}"));
    };
    allowed(response, &["status", "headers", "body", "text"], "response")?;
    let status = response
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..600).contains(n))
        .ok_or("`response.status` must be an HTTP status (100 to 599)")?;
    let mut expected = Map::new();
    expected.insert("status".into(), Value::from(status));
    match response.get("headers") {
        None => {}
        Some(Value::Object(headers)) => {
            let mut lower = Map::new();
            for (name, value) in headers {
                if lower
                    .insert(name.to_ascii_lowercase(), value.clone())
                    .is_some()
                {
                    return Err(format!(
                        "response.headers names `{name}` twice (header names are case-insensitive)"
                    ));
                }
            }
            expected.insert("headers".into(), Value::Object(lower));
        }
        Some(other) => return Err(format!("`response.headers` must be an object, not {other}")),
    }
    let body = match (response.get("body"), response.get("text")) {
        (Some(_), Some(_)) => {
            return Err(
                "`response` takes `body` (a JSON body) or `text` (any body as a string), not both"
                    .into(),
            );
        }
        (Some(b), None) => {
            expected.insert("body".into(), b.clone());
            BodyExpectation::Json
        }
        (None, Some(t)) => {
            expected.insert("text".into(), t.clone());
            BodyExpectation::Text
        }
        (None, None) => BodyExpectation::Unchecked,
    };
    let expected = compile(&Value::Object(expected), "response")?;
    Ok(HttpStep {
        request,
        status,
        body,
        expected,
        raw_response,
        undeclared: flag(map, "undeclared")?,
        malformed: flag(map, "malformed")?,
    })
}

fn parse_request(map: &Map<String, Value>) -> Result<HttpRequest, String> {
    allowed(
        map,
        &["method", "path", "headers", "body", "raw"],
        "request",
    )?;
    let method = match map.get("method") {
        Some(Value::String(m)) if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) => {
            m.to_ascii_uppercase()
        }
        _ => return Err("`request.method` must be an HTTP method such as \"GET\"".into()),
    };
    let path = match map.get("path") {
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        _ => return Err("`request.path` must be a string starting with `/`".into()),
    };
    let headers = match map.get("headers") {
        None => None,
        Some(Value::Object(h)) => Some(
            h.iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.clone(), s.to_owned()))
                        .ok_or_else(|| format!("request header `{k}` must be a string"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => return Err(format!("`request.headers` must be an object, not {other}")),
    };
    let body = match (map.get("body"), map.get("raw")) {
        (Some(_), Some(_)) => {
            return Err("`request` takes `body` (JSON) or `raw` (text), not both".into());
        }
        (Some(b), None) => Some(HttpBody::Json {
            pattern: Box::new(compile(b, "request.body")?),
            raw: b.clone(),
        }),
        (None, Some(Value::String(text))) => Some(HttpBody::Raw(text.clone())),
        (None, Some(other)) => {
            return Err(format!("`request.raw` must be a string, not {other}"));
        }
        (None, None) => None,
    };
    Ok(HttpRequest {
        method,
        path,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_line(line: Value) -> Result<HttpStep, String> {
        let Value::Object(map) = line else {
            panic!("an object")
        };
        parse(&map)
    }

    #[test]
    fn parses_requests_and_expectations() {
        let step = parse_line(json!({
            "type": "http",
            "request": {"method": "get", "path": "/metrics", "headers": {"Authorization": "Bearer ${TOKEN}"}},
            "response": {"status": 200, "headers": {"Content-Type": {"$regex": "^text/plain"}}, "text": {"$regex": "# EOF\\n$"}}
        }))
        .unwrap();
        assert_eq!(step.label(), "GET /metrics");
        assert_eq!(step.status, 200);
        assert_eq!(step.body, BodyExpectation::Text);
        assert!(
            step.expected
                .member("headers")
                .unwrap()
                .has_member("content-type")
        );
        assert_eq!(step.request.headers.as_ref().unwrap().len(), 1);
        let step = parse_line(json!({
            "type": "http", "undeclared": true,
            "request": {"method": "POST", "path": "/x", "body": {"a": {"$ref": "id"}}},
            "response": {"status": 404, "body": {"error": {"code": -3}}}
        }))
        .unwrap();
        assert!(step.undeclared && step.request.headers.is_none());
        assert!(matches!(step.request.body, Some(HttpBody::Json { .. })));
        assert_eq!(step.body, BodyExpectation::Json);
    }

    #[test]
    fn says_what_is_wrong() {
        for (line, why) in [
            (
                json!({"type": "http", "response": {"status": 200}}),
                "needs `request`",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/"}}),
                "needs `response`",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "health"}, "response": {"status": 200}}),
                "starting with `/`",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/"}, "response": {"status": 42}}),
                "HTTP status",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/"}, "response": {"status": 200, "body": {}, "text": ""}}),
                "not both",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/"}, "response": {"status": 200, "headers": {"A": "1", "a": "2"}}}),
                "twice",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/"}, "response": {"status": 200, "body": {"$tpye": 1}}}),
                "$tpye",
            ),
            (
                json!({"type": "http", "conn": "b", "request": {"method": "GET", "path": "/"}, "response": {"status": 200}}),
                "unknown member `conn`",
            ),
            (
                json!({"type": "http", "request": {"method": "GET", "path": "/", "raw": 1}, "response": {"status": 200}}),
                "`request.raw`",
            ),
        ] {
            let e = parse_line(line.clone()).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}
