//! The spec's HTTP surface (`x-http`) as the suite needs it: every declared route (method and
//! path, `:name` segments matching any one segment), its request and response schemas, and the
//! rules an HTTP answer is held to ([`HttpSpec::check_response`]).
//!
//! Everything is read from the spec document: a route another engineer moves into
//! `x-http.endpoints` (with its schemas) is matched, validated and listed in coverage without a
//! change here. Routes still listed in `authExceptions` or `protectedExtras` are declared, but
//! without schemas.
//!
//! Rules for a response (README.md, "HTTP steps"):
//! 1. The route must be declared (a step marked `undeclared` says it knowingly is not).
//! 2. A status the route declares: its `contentType` (when given) and its schema.
//! 3. 401, 403, 421 and 429 without a declared response: the body of `x-http.auth.failures`.
//! 4. Any other status of 400 or more without a declared response: an error body shaped like an
//!    ErrorFrame's `error` (`{"error": {code, message, data?}}`, code from the spec's table).
//! 5. Any other status the route does not declare is a violation.

use jsonschema::Validator;
use serde_json::Value;

use crate::path::JsonPath;
use crate::schema::{SpecError, Violation, compile_schema, run_validator};

/// The `x-http` lists that declare routes, in the order they are searched.
const ROUTE_LISTS: &[&str] = &["endpoints", "authExceptions", "protectedExtras"];

/// Statuses whose body is declared once for every route, by `x-http.auth.failures`.
const AUTH_FAILURE_STATUSES: &[u16] = &[401, 403, 421, 429];

/// A declared body: its media type and schema.
pub struct BodySpec {
    /// `contentType` as declared (`application/json` when absent).
    pub content_type: Option<String>,
    schema: Validator,
}

impl BodySpec {
    /// Whether the body is JSON (parsed before validation) rather than text.
    pub fn is_json(&self) -> bool {
        self.content_type.as_deref().is_none_or(is_json_media_type)
    }
}

/// One declared response of a route.
pub struct ResponseSpec {
    pub status: u16,
    pub body: Option<BodySpec>,
}

/// One declared route.
pub struct Route {
    pub method: String,
    /// As declared, with `:name` segments (`/webhooks/:name`).
    pub path: String,
    /// The `x-http` list that declares it (`endpoints`, `authExceptions`, `protectedExtras`).
    pub list: String,
    pub request: Option<BodySpec>,
    pub responses: Vec<ResponseSpec>,
}

impl Route {
    /// How many literal segments `path` (no query) shares with this route's pattern, or `None`
    /// when it does not match.
    fn match_score(&self, path: &str) -> Option<usize> {
        let pattern: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut literal = 0;
        for (p, a) in pattern.iter().zip(&actual) {
            if p.starts_with(':') {
                if a.is_empty() {
                    return None;
                }
            } else if p == a {
                literal += 1;
            } else {
                return None;
            }
        }
        Some(literal)
    }

    /// The declared response for `status`.
    pub fn response(&self, status: u16) -> Option<&ResponseSpec> {
        self.responses.iter().find(|r| r.status == status)
    }

    /// `GET /health`.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The compiled `x-http`.
pub struct HttpSpec {
    pub routes: Vec<Route>,
    /// `x-http.auth.failures.bodySchema`.
    auth_failure_body: Option<Validator>,
}

/// An HTTP answer as received.
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl HttpSpec {
    /// Reads `x-http` of the spec document; a spec without it declares no route.
    pub fn from_doc(doc: &Value, components: &Value) -> Result<Self, SpecError> {
        let Some(http) = doc.get("x-http") else {
            return Ok(Self {
                routes: Vec::new(),
                auth_failure_body: None,
            });
        };
        let compile = |what: &str, schema: &Value| compile_schema(what, schema.clone(), components);
        let mut routes = Vec::new();
        for list in ROUTE_LISTS {
            for entry in http
                .get(*list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                routes.push(read_route(list, entry, &compile)?);
            }
        }
        let auth_failure_body = http
            .pointer("/auth/failures/bodySchema")
            .map(|schema| compile("x-http.auth.failures.bodySchema", schema))
            .transpose()?;
        Ok(Self {
            routes,
            auth_failure_body,
        })
    }

    /// The route `method path` falls under (the query is ignored; literal segments win over
    /// `:name` ones).
    pub fn find(&self, method: &str, path: &str) -> Option<&Route> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        self.routes
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method))
            .filter_map(|r| r.match_score(path).map(|score| (score, r)))
            .max_by_key(|(score, _)| *score)
            .map(|(_, r)| r)
    }

    /// Holds a request body the transcript sends to the route's request schema.
    pub fn check_request(&self, route: &Route, body: &Value) -> Vec<Violation> {
        match &route.request {
            Some(spec) => run_validator(&spec.schema, body, &JsonPath::root().key("body")),
            None => Vec::new(),
        }
    }

    /// Holds an answer to the spec (the rules in the module documentation). `route` is `None`
    /// for a request the transcript marks as knowingly undeclared. `check_error_body` holds an
    /// undeclared error body (`{"error": ...}`) to the RPC error table (rule 4); callers use
    /// [`crate::spec::Spec::check_http_response`], which passes the spec's.
    pub fn check_response(
        &self,
        route: Option<&Route>,
        answer: &Answer<'_>,
        check_error_body: impl FnOnce(&Value) -> Vec<Violation>,
    ) -> Vec<Violation> {
        if let Some(declared) = route.and_then(|r| r.response(answer.status)) {
            let Some(body) = &declared.body else {
                return Vec::new();
            };
            let mut out = check_content_type(body.content_type.as_deref(), answer.content_type);
            if body.is_json() {
                match parse_json(answer.body) {
                    Ok(value) => out.extend(run_validator(&body.schema, &value, &body_path())),
                    Err(v) => out.push(v),
                }
            } else {
                let text = Value::String(String::from_utf8_lossy(answer.body).into_owned());
                out.extend(run_validator(
                    &body.schema,
                    &text,
                    &JsonPath::root().key("text"),
                ));
            }
            return out;
        }
        if let Some(validator) = self
            .auth_failure_body
            .as_ref()
            .filter(|_| AUTH_FAILURE_STATUSES.contains(&answer.status))
        {
            return check_json_body(answer, |value| {
                run_validator(validator, value, &body_path())
            });
        }
        if answer.status >= 400 {
            return check_json_body(answer, check_error_body);
        }
        let message = match route {
            Some(r) => format!(
                "x-http declares no {} response for {} (declared: {})",
                answer.status,
                r.label(),
                declared_statuses(r)
            ),
            None => format!(
                "a {} answer to a route x-http does not declare; only error statuses are expected there",
                answer.status
            ),
        };
        vec![Violation {
            path: "status".into(),
            message,
        }]
    }
}

fn declared_statuses(route: &Route) -> String {
    if route.responses.is_empty() {
        return format!(
            "none: it is listed in x-http.{} without schemas",
            route.list
        );
    }
    route
        .responses
        .iter()
        .map(|r| r.status.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn body_path() -> JsonPath {
    JsonPath::root().key("body")
}

/// `application/json` and `*/*+json`.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    essence == "application/json" || essence.ends_with("+json")
}

/// The media type without parameters, lowercase (`text/plain`).
fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `name=value` parameters, names lowercase, values unquoted.
fn media_params(content_type: &str) -> Vec<(String, String)> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// The received `Content-Type` has the declared media type and every declared parameter
/// (charset compared without case, as RFC 9110 says; others exactly).
fn check_content_type(declared: Option<&str>, received: Option<&str>) -> Vec<Violation> {
    let declared = declared.unwrap_or("application/json");
    let violation = |message: String| {
        vec![Violation {
            path: "headers[\"content-type\"]".into(),
            message,
        }]
    };
    let Some(received) = received else {
        return violation(format!("no Content-Type; x-http declares {declared:?}"));
    };
    if media_essence(declared) != media_essence(received) {
        return violation(format!(
            "Content-Type {received:?}; x-http declares {declared:?}"
        ));
    }
    let got = media_params(received);
    for (name, value) in media_params(declared) {
        let same = got.iter().any(|(n, v)| {
            *n == name
                && if name == "charset" {
                    v.eq_ignore_ascii_case(&value)
                } else {
                    *v == value
                }
        });
        if !same {
            return violation(format!(
                "Content-Type {received:?} lacks `{name}={value}`; x-http declares {declared:?}"
            ));
        }
    }
    Vec::new()
}

fn parse_json(body: &[u8]) -> Result<Value, Violation> {
    serde_json::from_slice(body).map_err(|e| Violation {
        path: "body".into(),
        message: format!("the body is not JSON ({e})"),
    })
}

/// A body that must be JSON, checked by `check`.
fn check_json_body(
    answer: &Answer<'_>,
    check: impl FnOnce(&Value) -> Vec<Violation>,
) -> Vec<Violation> {
    let mut out = check_content_type(None, answer.content_type);
    match parse_json(answer.body) {
        Ok(value) => out.extend(check(&value)),
        Err(v) => out.push(v),
    }
    out
}

type Compile<'a> = dyn Fn(&str, &Value) -> Result<Validator, SpecError> + 'a;

fn read_route(list: &str, entry: &Value, compile: &Compile<'_>) -> Result<Route, SpecError> {
    let text = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SpecError::Missing(format!("x-http.{list}[].{key}")))
    };
    let method = text("method")?.to_ascii_uppercase();
    let path = text("path")?;
    let what = format!("x-http {method} {path}");
    let body = |value: &Value, which: &str| -> Result<Option<BodySpec>, SpecError> {
        let Some(schema) = value.get("schema") else {
            return Ok(None);
        };
        Ok(Some(BodySpec {
            content_type: value
                .get("contentType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            schema: compile(&format!("{what} {which}"), schema)?,
        }))
    };
    let request = match entry.get("request") {
        Some(r) => body(r, "request")?,
        None => None,
    };
    // `response` (one; its `status` defaults to 200) or `responses` (a list, or an object keyed
    // by status).
    let mut declared: Vec<(Option<u16>, &Value)> = Vec::new();
    if let Some(r) = entry.get("response") {
        let default = r.get("status").is_none().then_some(200);
        declared.push((default, r));
    }
    match entry.get("responses") {
        Some(Value::Array(items)) => declared.extend(items.iter().map(|r| (None, r))),
        Some(Value::Object(by_status)) => {
            for (status, r) in by_status {
                declared.push((status.parse().ok(), r));
            }
        }
        _ => {}
    }
    let mut responses = Vec::new();
    for (key_status, r) in declared {
        let status = key_status
            .or_else(|| {
                r.get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
            })
            .ok_or_else(|| SpecError::Missing(format!("{what}: a response's `status`")))?;
        responses.push(ResponseSpec {
            status,
            body: body(r, &format!("{status} response"))?,
        });
    }
    Ok(Route {
        method,
        path,
        list: list.to_owned(),
        request,
        responses,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::Spec;

    fn spec() -> Spec {
        Spec::load().unwrap()
    }

    fn answer<'a>(status: u16, content_type: &'a str, body: &'a str) -> Answer<'a> {
        Answer {
            status,
            content_type: Some(content_type),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn routes_come_from_x_http_and_params_match_one_segment() {
        let s = spec();
        assert_eq!(s.http.find("GET", "/health").unwrap().path, "/health");
        assert_eq!(
            s.http.find("get", "/api/health?x=1").unwrap().path,
            "/api/health"
        );
        assert!(s.http.find("POST", "/health").is_none());
        assert!(s.http.find("GET", "/no-such-route").is_none());
        let hook = s.http.find("POST", "/webhooks/github").unwrap();
        assert_eq!(hook.path, "/webhooks/:name");
        assert!(s.http.find("POST", "/webhooks/").is_none());
        assert!(s.http.find("POST", "/webhooks/a/b").is_none());
        assert!(
            s.http
                .routes
                .iter()
                .any(|r| r.list == "endpoints" && r.path == "/metrics")
        );
    }

    #[test]
    fn declared_responses_are_held_to_their_schema_and_content_type() {
        let s = spec();
        let health = s.http.find("GET", "/health");
        let ok = answer(
            200,
            "application/json",
            r#"{"status":"ok","version":"1","uptime":3}"#,
        );
        assert!(s.check_http_response(health, &ok).is_empty());
        let bad = answer(
            200,
            "application/json",
            r#"{"status":"ok","version":"1","uptime":"soon"}"#,
        );
        let v = s.check_http_response(health, &bad);
        assert_eq!(v[0].path, "body.uptime", "{v:?}");
        let not_json = answer(200, "text/plain", "ok");
        let v = s.check_http_response(health, &not_json);
        assert!(
            v.iter().any(|v| v.path == "headers[\"content-type\"]"),
            "{v:?}"
        );
        assert!(v.iter().any(|v| v.message.contains("not JSON")), "{v:?}");

        let metrics = s.http.find("GET", "/metrics");
        let text = "text/plain; version=0.0.4; charset=UTF-8";
        assert!(
            s.check_http_response(metrics, &answer(200, text, "# EOF\n"))
                .is_empty()
        );
        let v = s.check_http_response(metrics, &answer(200, text, "x 1\n"));
        assert_eq!(v[0].path, "text", "{v:?}");
        let v = s.check_http_response(metrics, &answer(200, "text/plain", "# EOF\n"));
        assert!(v[0].message.contains("version=0.0.4"), "{v:?}");
    }

    #[test]
    fn undeclared_statuses_follow_the_error_rules() {
        let s = spec();
        let health = s.http.find("GET", "/health");
        let json = "application/json";
        let denied = answer(401, json, r#"{"error":{"code":-4,"message":"no"}}"#);
        assert!(s.check_http_response(health, &denied).is_empty());
        let v = s.check_http_response(
            health,
            &answer(401, json, r#"{"error":{"code":7,"message":"no"}}"#),
        );
        assert_eq!(v[0].path, "body.error.code", "{v:?}");
        let missing = answer(404, json, r#"{"error":{"code":-3,"message":"no"}}"#);
        assert!(s.check_http_response(None, &missing).is_empty());
        let v = s.check_http_response(
            None,
            &answer(404, json, r#"{"error":{"code":99,"message":"no"}}"#),
        );
        assert_eq!(v[0].path, "body.error.code", "{v:?}");
        let v = s.check_http_response(None, &answer(500, json, r#"{"oops":1}"#));
        assert_eq!(v[0].path, "body", "{v:?}");
        let v = s.check_http_response(health, &answer(204, json, ""));
        assert!(v[0].message.contains("declares no 204 response"), "{v:?}");
    }

    #[test]
    fn responses_are_read_in_every_declared_form() {
        let components = json!({});
        let compile =
            |what: &str, schema: &Value| compile_schema(what, schema.clone(), &components);
        let entry = json!({
            "method": "post", "path": "/webhooks/:name",
            "request": {"schema": {"type": "object"}},
            "response": {"schema": {"type": "object"}},
            "responses": {"400": {"schema": {"type": "object"}}, "401": {}}
        });
        let route = read_route("endpoints", &entry, &compile).unwrap();
        assert_eq!(route.label(), "POST /webhooks/:name");
        let statuses: Vec<u16> = route.responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 400, 401], "a lone response defaults to 200");
        assert!(route.request.is_some() && route.response(401).unwrap().body.is_none());
        let listed =
            json!({"method": "GET", "path": "/x", "responses": [{"status": 204}, {"schema": {}}]});
        let e = read_route("endpoints", &listed, &compile).err().unwrap();
        assert!(e.to_string().contains("status"), "{e}");
        let undocumented = json!({"method": "GET", "path": "/y"});
        assert!(
            read_route("protectedExtras", &undocumented, &compile)
                .unwrap()
                .responses
                .is_empty()
        );
    }
}
