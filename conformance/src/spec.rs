//! The spec (`spec/flynn.openrpc.json`, embedded in `flynn-protocol`) as validators: every
//! method's params and result, every event's data, every error's data, and the four frame
//! schemas of `x-wire`. Every frame any mode sees goes through [`Spec::check_request`] or
//! [`Spec::check_server_frame`].
//!
//! Params schemas are built like the code generator builds them
//! (`{type: object, properties, required, additionalProperties: false}`), so the suite holds
//! clients to exactly what the generated types accept. `$ref`s point into
//! `#/components/schemas`; each validator's root document carries `components`, which is how
//! they resolve without a registry.

use std::collections::BTreeMap;

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use crate::path::JsonPath;
use crate::routes::{Answer, HttpSpec, Route};
pub use crate::schema::{SpecError, Violation};
use crate::schema::{compile_schema, run_validator};

/// A method as the suite needs it.
pub struct MethodSpec {
    pub name: String,
    params: Validator,
    result: Validator,
    /// Events the method may emit (`x-events`).
    pub events: Vec<String>,
    /// Error codes the method may return (its `errors`).
    pub errors: Vec<i64>,
    /// Each example's params as an object.
    pub example_params: Vec<Value>,
}

/// An error code.
pub struct ErrorSpec {
    pub code: i64,
    pub name: String,
    /// `frame`, `connection` or `method`.
    pub scope: String,
    data: Option<Validator>,
}

/// The spec, compiled.
pub struct Spec {
    pub version: String,
    pub methods: BTreeMap<String, MethodSpec>,
    events: BTreeMap<String, Validator>,
    pub errors: BTreeMap<i64, ErrorSpec>,
    request_frame: Validator,
    response_frame: Validator,
    error_frame: Validator,
    event_frame: Validator,
    /// The HTTP surface (`x-http`): routes and their schemas.
    pub http: HttpSpec,
}

fn get<'a>(value: &'a Value, key: &str) -> Result<&'a Value, SpecError> {
    value
        .get(key)
        .ok_or_else(|| SpecError::Missing(key.to_owned()))
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, SpecError> {
    get(value, key)?
        .as_array()
        .ok_or_else(|| SpecError::Missing(format!("{key} (a list)")))
}

impl Spec {
    /// The spec embedded in `flynn-protocol`.
    pub fn load() -> Result<Self, SpecError> {
        Self::from_json(flynn_protocol::SPEC_JSON)
    }

    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let doc: Value = serde_json::from_str(text)?;
        let components = get(&doc, "components")?.clone();
        let wire = get(get(&doc, "x-wire")?, "schemas")?;
        let frame = |name: &str| -> Result<Validator, SpecError> {
            compile_schema(
                &format!("x-wire.schemas.{name}"),
                get(wire, name)?.clone(),
                &components,
            )
        };
        let component_errors = get(&components, "errors")?
            .as_object()
            .ok_or_else(|| SpecError::Missing("components.errors".into()))?;
        let errors = compile_errors(get(&doc, "x-errors")?, component_errors, &components)?;
        let events = compile_events(&doc, &components)?;
        let mut methods = BTreeMap::new();
        for method in array(&doc, "methods")? {
            let method = compile_method(method, component_errors, &components)?;
            methods.insert(method.name.clone(), method);
        }
        Ok(Spec {
            version: get(get(&doc, "info")?, "version")?
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            methods,
            events,
            errors,
            request_frame: frame("RequestFrame")?,
            response_frame: frame("ResponseFrame")?,
            error_frame: frame("ErrorFrame")?,
            event_frame: frame("EventFrame")?,
            http: HttpSpec::from_doc(&doc, &components)?,
        })
    }

    /// Event names, sorted.
    pub fn event_names(&self) -> impl Iterator<Item = &String> {
        self.events.keys()
    }

    /// Checks a client-to-server frame: the request frame schema, then the method's params.
    /// An unknown method is a violation too (the frame then gets -3 from a gateway).
    pub fn check_request(&self, frame: &Value) -> Vec<Violation> {
        let mut out = run_validator(&self.request_frame, frame, &JsonPath::root());
        if !out.is_empty() {
            return out;
        }
        let Some(name) = frame.get("method").and_then(Value::as_str) else {
            return out;
        };
        let Some(method) = self.methods.get(name) else {
            out.push(Violation {
                path: "method".into(),
                message: format!("`{name}` is not a method of the spec"),
            });
            return out;
        };
        // `[]` is what JSON-RPC libraries send for no params (decision params-empty-array).
        let params = match frame.get("params") {
            None | Some(Value::Null) => json!({}),
            Some(Value::Array(a)) if a.is_empty() => json!({}),
            Some(p) => p.clone(),
        };
        out.extend(run_validator(
            &method.params,
            &params,
            &JsonPath::root().key("params"),
        ));
        out
    }

    /// Checks a server-to-client frame. `method` is the method of the request the frame
    /// answers or belongs to, when known (results and events are checked against it).
    pub fn check_server_frame(&self, frame: &Value, method: Option<&str>) -> Vec<Violation> {
        let Some(object) = frame.as_object() else {
            return vec![Violation {
                path: String::new(),
                message: "a server frame must be a JSON object".into(),
            }];
        };
        let method = method.and_then(|m| self.methods.get(m));
        if let Some(event) = object.get("event") {
            return self.check_event_frame(frame, object, event, method);
        }
        if let Some(error) = object.get("error") {
            return self.check_error_frame(frame, object, error, method);
        }
        if let Some(result) = object.get("result") {
            let root = JsonPath::root();
            let mut out = run_validator(&self.response_frame, frame, &root);
            if let Some(m) = method {
                out.extend(run_validator(&m.result, result, &root.key("result")));
            }
            return out;
        }
        vec![Violation {
            path: String::new(),
            message: "a server frame needs `result`, `error` or `event`".into(),
        }]
    }

    /// An event frame: the frame schema, the event's data (an `error` event's code must be
    /// known), and the event among the method's `x-events`.
    fn check_event_frame(
        &self,
        frame: &Value,
        object: &Map<String, Value>,
        event: &Value,
        method: Option<&MethodSpec>,
    ) -> Vec<Violation> {
        let root = JsonPath::root();
        let mut out = run_validator(&self.event_frame, frame, &root);
        let Some(name) = event.as_str() else {
            return out;
        };
        match self.events.get(name) {
            None => out.push(Violation {
                path: "event".into(),
                message: format!("`{name}` is not an event of the spec"),
            }),
            Some(validator) => {
                if let Some(data) = object.get("data") {
                    out.extend(run_validator(validator, data, &root.key("data")));
                }
                if let Some(code) = (name == "error")
                    .then(|| object.get("data").and_then(|d| d.get("code")))
                    .flatten()
                    .and_then(Value::as_i64)
                    && !self.errors.contains_key(&code)
                {
                    out.push(Violation {
                        path: "data.code".into(),
                        message: format!("{code} is not an error code of the spec"),
                    });
                }
            }
        }
        if let Some(m) = method
            && !m.events.iter().any(|e| e == name)
        {
            out.push(Violation {
                path: "event".into(),
                message: format!(
                    "`{}` does not emit `{name}` (its x-events: {})",
                    m.name,
                    list_or_none(&m.events)
                ),
            });
        }
        out
    }

    /// An error reply: the frame schema, no `result` beside it, a known code with valid data,
    /// and (for a method-scoped code) one the method lists.
    fn check_error_frame(
        &self,
        frame: &Value,
        object: &Map<String, Value>,
        error: &Value,
        method: Option<&MethodSpec>,
    ) -> Vec<Violation> {
        let root = JsonPath::root();
        let mut out = run_validator(&self.error_frame, frame, &root);
        if object.contains_key("result") {
            out.push(Violation {
                path: "result".into(),
                message: "a reply has either `result` or `error`, not both".into(),
            });
        }
        let Some(code) = error.get("code").and_then(Value::as_i64) else {
            return out;
        };
        let Some(spec) = self.errors.get(&code) else {
            out.push(Violation {
                path: "error.code".into(),
                message: format!("{code} is not an error code of the spec"),
            });
            return out;
        };
        if let (Some(validator), Some(data)) = (&spec.data, error.get("data")) {
            out.extend(run_validator(
                validator,
                data,
                &root.key("error").key("data"),
            ));
        }
        if spec.scope == "method"
            && let Some(m) = method
            && !m.errors.contains(&code)
        {
            out.push(Violation {
                path: "error.code".into(),
                message: format!(
                    "`{}` does not list error {code} ({}) among its errors",
                    m.name, spec.name
                ),
            });
        }
        out
    }

    /// Holds an HTTP answer to `x-http` (see [`HttpSpec::check_response`]), an undeclared error
    /// body to the RPC error table.
    pub fn check_http_response(
        &self,
        route: Option<&Route>,
        answer: &Answer<'_>,
    ) -> Vec<Violation> {
        self.http
            .check_response(route, answer, |body| self.check_http_error_body(body))
    }

    /// `{"error": {...}}` held to the ErrorFrame schema's `error` and the spec's error codes (the
    /// body "shaped like an ErrorFrame's error" of `x-http.auth.failures.http`).
    fn check_http_error_body(&self, body: &Value) -> Vec<Violation> {
        let Some(error) = body.get("error") else {
            return vec![Violation {
                path: "body".into(),
                message: "an HTTP error without a declared schema must be `{\"error\": {\"code\", \"message\"}}`, like an ErrorFrame's error".into(),
            }];
        };
        self.check_server_frame(&json!({"id": null, "error": error}), None)
            .into_iter()
            .filter(|v| v.path.starts_with("error"))
            .map(|v| Violation {
                path: format!("body.{}", v.path),
                message: v.message,
            })
            .collect()
    }
}

/// `components.errors` by code, each with its `x-errors` scope (`method` when none is given).
fn compile_errors(
    x_errors: &Value,
    component_errors: &Map<String, Value>,
    components: &Value,
) -> Result<BTreeMap<i64, ErrorSpec>, SpecError> {
    let mut errors = BTreeMap::new();
    for (name, error) in component_errors {
        let code = get(error, "code")?
            .as_i64()
            .ok_or_else(|| SpecError::Missing(format!("components.errors.{name}.code")))?;
        let data = match error.get("data") {
            Some(schema) => Some(compile_schema(
                &format!("error {name} data"),
                schema.clone(),
                components,
            )?),
            None => None,
        };
        let scope = x_errors
            .get(name)
            .and_then(|e| e.get("scope"))
            .and_then(Value::as_str)
            .unwrap_or("method")
            .to_owned();
        errors.insert(
            code,
            ErrorSpec {
                code,
                name: name.clone(),
                scope,
                data,
            },
        );
    }
    Ok(errors)
}

/// Each `x-events` entry's data validator by name (an event without `data` accepts any).
fn compile_events(
    doc: &Value,
    components: &Value,
) -> Result<BTreeMap<String, Validator>, SpecError> {
    let mut events = BTreeMap::new();
    for event in array(doc, "x-events")? {
        let name = get(event, "name")?
            .as_str()
            .ok_or_else(|| SpecError::Missing("x-events[].name".into()))?;
        let schema = event.get("data").cloned().unwrap_or(json!({}));
        events.insert(
            name.to_owned(),
            compile_schema(&format!("event {name} data"), schema, components)?,
        );
    }
    Ok(events)
}

/// One entry of `methods`: its params and result validators, events, error codes and example
/// params.
fn compile_method(
    method: &Value,
    component_errors: &Map<String, Value>,
    components: &Value,
) -> Result<MethodSpec, SpecError> {
    let name = get(method, "name")?
        .as_str()
        .ok_or_else(|| SpecError::Missing("methods[].name".into()))?
        .to_owned();
    // The params schema the generated crate carries (the one its params types and the
    // gateway's params checks come from), not one rebuilt here.
    let params_schema: Value = flynn_protocol::Method::from_name(&name)
        .ok_or_else(|| SpecError::Missing(format!("{name} in the generated Method")))
        .and_then(|m| Ok(serde_json::from_str(m.params_schema())?))?;
    let result_schema = get(get(method, "result")?, "schema")?.clone();
    let events = method
        .get("x-events")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let code_of_ref = |r: &Value| -> Option<i64> {
        let name = r.get("$ref")?.as_str()?.rsplit('/').next()?;
        component_errors.get(name)?.get("code")?.as_i64()
    };
    let errors = method
        .get("errors")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(code_of_ref).collect())
        .unwrap_or_default();
    Ok(MethodSpec {
        params: compile_schema(&format!("{name} params"), params_schema, components)?,
        result: compile_schema(&format!("{name} result"), result_schema, components)?,
        name,
        events,
        errors,
        example_params: example_params(method),
    })
}

/// Each of a method's `examples` as a params object.
fn example_params(method: &Value) -> Vec<Value> {
    let Some(examples) = method.get("examples").and_then(Value::as_array) else {
        return Vec::new();
    };
    examples
        .iter()
        .map(|example| {
            let mut object = Map::new();
            for p in example
                .get("params")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(n), Some(v)) = (p.get("name").and_then(Value::as_str), p.get("value"))
                {
                    object.insert(n.to_owned(), v.clone());
                }
            }
            Value::Object(object)
        })
        .collect()
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::load().unwrap()
    }

    #[test]
    fn loads_every_method_event_and_code() {
        let s = spec();
        assert_eq!(s.methods.len(), 42);
        assert_eq!(s.event_names().count(), 8);
        // The document's ten codes and ScopeRequired (-6), which every method may answer.
        assert_eq!(s.errors.len(), 11);
        assert!(s.methods.values().all(|m| m.errors.contains(&-6)));
        assert!(s.methods["agent.send"].events.contains(&"done".to_owned()));
        assert!(s.methods["agent.send"].errors.contains(&3));
    }

    #[test]
    fn requests_are_checked_against_params() {
        let s = spec();
        assert!(
            s.check_request(&json!({"id": 1, "method": "system.info"}))
                .is_empty()
        );
        let v = s
            .check_request(&json!({"id": 1, "method": "sessions.get", "params": {"sessionId": 5}}));
        assert_eq!(v[0].path, "params.sessionId");
        let v = s.check_request(&json!({"id": 1, "method": "system.info", "params": {"x": 1}}));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            s.check_request(&json!({"id": 1.5, "method": "system.info"}))[0].path,
            "id"
        );
        assert_eq!(
            s.check_request(&json!({"id": 1, "method": "nope"}))[0].path,
            "method"
        );
        // JSON-RPC 2.0: `params: []` is no params; without an id a frame is a notification,
        // which needs `"jsonrpc": "2.0"`.
        let empty = json!({"jsonrpc": "2.0", "id": 1, "method": "system.info", "params": []});
        assert!(s.check_request(&empty).is_empty());
        let positional = json!({"jsonrpc": "2.0", "id": 1, "method": "system.info", "params": [1]});
        assert!(!s.check_request(&positional).is_empty());
        let note =
            json!({"jsonrpc": "2.0", "method": "agent.cancel", "params": {"sessionId": "x"}});
        assert!(s.check_request(&note).is_empty());
        assert!(
            !s.check_request(&json!({"method": "system.info"}))
                .is_empty()
        );
    }

    #[test]
    fn server_frames_are_checked_by_method_event_and_code() {
        let s = spec();
        let ok = json!({"id": 1, "result": {"version": "1", "uptime": 1, "connections": 1}});
        assert!(s.check_server_frame(&ok, Some("system.info")).is_empty());
        let bad = json!({"id": 1, "result": {"version": "1", "uptime": "soon", "connections": 1}});
        let v = s.check_server_frame(&bad, Some("system.info"));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "result.uptime");
        let ev = json!({"id": 1, "event": "content", "data": {"text": 5}, "seq": 1});
        assert_eq!(
            s.check_server_frame(&ev, Some("agent.send"))[0].path,
            "data.text"
        );
        let ev = json!({"id": 1, "event": "done", "data": {"content": ""}, "seq": 1});
        assert_eq!(
            s.check_server_frame(&ev, Some("system.info"))[0].path,
            "event"
        );
        let err =
            json!({"id": 1, "error": {"code": 1, "message": "x", "data": {"sessionId": "a"}}});
        assert!(s.check_server_frame(&err, Some("sessions.get")).is_empty());
        assert_eq!(
            s.check_server_frame(&err, Some("system.info"))[0].path,
            "error.code"
        );
        let err = json!({"id": null, "error": {"code": 42, "message": "x"}});
        assert_eq!(s.check_server_frame(&err, None)[0].path, "error.code");
        let odd = json!({"id": 1});
        assert_eq!(s.check_server_frame(&odd, None).len(), 1);
    }
}
