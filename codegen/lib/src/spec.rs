//! The parsed spec: the parts of `spec/flynn.openrpc.json` that generation reads, checked against
//! the conventions written down in `spec/README.md` so that a malformed spec fails with a message
//! naming the method and field instead of producing odd code.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{names, refs};

mod defs;

pub use defs::{BrowserSubprotocol, ErrorDef, Event, Method, Param, ScopeDef, TagDef};

/// Why a spec document could not be used for generation.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the spec is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("spec convention broken at {at}: {problem}")]
    Convention { at: String, problem: String },
}

fn broken(at: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError::Convention {
        at: at.into(),
        problem: problem.into(),
    }
}

/// A whole spec document.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The document as JSON, kept for `rpc.discover` and for diffing.
    pub raw: Value,
    pub title: String,
    /// `info.version`: the spec's semantic version.
    pub version: String,
    /// `x-protocol-version`: the integer negotiated by `node.register`.
    pub protocol_version: i64,
    pub methods: Vec<Method>,
    pub events: Vec<Event>,
    pub errors: Vec<ErrorDef>,
    /// `x-scopes`: the permissions a credential may hold, in spec order.
    pub scopes: Vec<ScopeDef>,
    /// `components.tags`: the method groups, by name. Every method names one; the generated
    /// Rust has one handler trait per tag. Empty for documents from before tags were declared
    /// (released 1.1.0), which only diffing reads.
    pub tags: Vec<TagDef>,
    /// `components.schemas`, by name.
    pub schemas: BTreeMap<String, Value>,
    /// `x-http.auth.browserSubprotocol`: how browsers offer a token. Required for generating
    /// code; optional for diffing (older and synthetic specs lack it).
    pub browser_subprotocol: Option<BrowserSubprotocol>,
}

fn str_field(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The schema name behind `{"$ref": "#/components/schemas/Name"}`.
pub fn schema_ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

impl Spec {
    /// Parses and checks a spec document.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let raw: Value = serde_json::from_str(text)?;
        Self::from_value(raw)
    }

    pub fn from_value(raw: Value) -> Result<Self, SpecError> {
        let title =
            str_field(&raw["info"], "title").ok_or_else(|| broken("info.title", "missing"))?;
        let version =
            str_field(&raw["info"], "version").ok_or_else(|| broken("info.version", "missing"))?;
        let protocol_version = raw["x-protocol-version"]
            .as_i64()
            .ok_or_else(|| broken("x-protocol-version", "missing or not an integer"))?;

        let schemas: BTreeMap<String, Value> = raw["components"]["schemas"]
            .as_object()
            .ok_or_else(|| broken("components.schemas", "missing"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let errors = parse_errors(&raw)?;
        let scopes = parse_scopes(&raw)?;
        let tags = parse_tags(&raw)?;
        let events = parse_events(&raw, &schemas)?;
        let event_names: BTreeSet<&str> = events.iter().map(|e| e.name.as_str()).collect();
        let error_names: BTreeSet<&str> = errors.iter().map(|e| e.name.as_str()).collect();

        let mut methods = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, m) in raw["methods"]
            .as_array()
            .ok_or_else(|| broken("methods", "missing"))?
            .iter()
            .enumerate()
        {
            let method = parse_method(index, m, &schemas, &event_names, &error_names)?;
            check_method_refs(index, &method, &scopes, &tags, &schemas)?;
            if !seen.insert(method.name.clone()) {
                return Err(broken(
                    format!("methods[{index}]"),
                    format!("duplicate method `{}`", method.name),
                ));
            }
            if schemas.contains_key(&method.params_type()) {
                return Err(broken(
                    format!("components.schemas.{}", method.params_type()),
                    "this name is reserved for the synthesized params of a method",
                ));
            }
            methods.push(method);
        }
        if let Some(unused) = tags
            .iter()
            .find(|t| !methods.iter().any(|m| m.tag == t.name))
        {
            return Err(broken(
                format!("components.tags.{}", unused.name),
                "no method has this tag: remove it or tag the methods that belong to it",
            ));
        }
        if let Some((at, r)) = refs::unresolved_ref(&raw, &schemas) {
            return Err(broken(at, format!("$ref `{r}` does not resolve")));
        }
        let browser_subprotocol = parse_browser_subprotocol(&raw)?;

        Ok(Spec {
            raw,
            title,
            version,
            protocol_version,
            methods,
            events,
            errors,
            scopes,
            tags,
            schemas,
            browser_subprotocol,
        })
    }

    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The methods of one tag, in spec order.
    pub fn tag_methods<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Method> + 'a {
        self.methods.iter().filter(move |m| m.tag == tag)
    }

    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    /// Methods of the protocol document, i.e. neither extensions nor `rpc.discover`.
    pub fn document_methods(&self) -> impl Iterator<Item = &Method> {
        self.methods
            .iter()
            .filter(|m| !m.extension && m.name != "rpc.discover")
    }

    /// Count of examples: method examples, event examples and wire examples.
    pub fn example_count(&self) -> usize {
        let wire = self.raw["x-wire"]["examples"]
            .as_array()
            .map_or(0, Vec::len);
        self.methods.iter().map(|m| m.examples.len()).sum::<usize>()
            + self.events.iter().map(|e| e.examples.len()).sum::<usize>()
            + wire
    }
}

fn parse_browser_subprotocol(raw: &Value) -> Result<Option<BrowserSubprotocol>, SpecError> {
    const AT: &str = "x-http.auth.browserSubprotocol";
    let section = &raw["x-http"]["auth"]["browserSubprotocol"];
    if section.is_null() {
        return Ok(None);
    }
    let protocol = str_field(section, "protocol")
        .ok_or_else(|| broken(format!("{AT}.protocol"), "missing or not a string"))?;
    let token_prefix = str_field(section, "tokenPrefix")
        .ok_or_else(|| broken(format!("{AT}.tokenPrefix"), "missing or not a string"))?;
    Ok(Some(BrowserSubprotocol {
        protocol,
        token_prefix,
    }))
}

fn parse_errors(raw: &Value) -> Result<Vec<ErrorDef>, SpecError> {
    let mut errors = Vec::new();
    for (name, e) in raw["components"]["errors"]
        .as_object()
        .ok_or_else(|| broken("components.errors", "missing"))?
    {
        let at = format!("components.errors.{name}");
        if !names::is_pascal(name) {
            return Err(broken(at, "error names are PascalCase"));
        }
        errors.push(ErrorDef {
            name: name.clone(),
            code: e["code"]
                .as_i64()
                .ok_or_else(|| broken(&at, "code missing or not an integer"))?,
            message: str_field(e, "message").ok_or_else(|| broken(&at, "message missing"))?,
            // The meta-schema allows only code/message/data on error objects, so descriptions
            // live in the root `x-errors` map under the same key.
            description: str_field(&raw["x-errors"][name], "x-description")
                .or_else(|| str_field(e, "x-description"))
                .unwrap_or_default(),
            extension: raw["x-errors"][name]["x-extension"]
                .as_bool()
                .unwrap_or(false),
        });
    }
    errors.sort_by_key(|e| e.code);
    Ok(errors)
}

fn parse_events(raw: &Value, schemas: &BTreeMap<String, Value>) -> Result<Vec<Event>, SpecError> {
    let mut events = Vec::new();
    for (index, e) in raw["x-events"]
        .as_array()
        .ok_or_else(|| {
            broken(
                "x-events",
                "missing: events are declared in the root x-events list",
            )
        })?
        .iter()
        .enumerate()
    {
        let at = format!("x-events[{index}]");
        let name = str_field(e, "name").ok_or_else(|| broken(&at, "name missing"))?;
        let data = schema_ref_name(&e["data"])
            .ok_or_else(|| {
                broken(
                    format!("{at} ({name}).data"),
                    "must be a $ref to components.schemas",
                )
            })?
            .to_owned();
        if !schemas.contains_key(&data) {
            return Err(broken(
                format!("{at} ({name}).data"),
                format!("unknown schema `{data}`"),
            ));
        }
        events.push(Event {
            name,
            description: str_field(e, "description").unwrap_or_default(),
            data,
            extension: e["x-extension"].as_bool().unwrap_or(false),
            examples: e["examples"].as_array().cloned().unwrap_or_default(),
        });
    }
    Ok(events)
}

/// The root `x-scopes` list: names unique, lower-case words. A document without it is from
/// before scopes (released 1.1.0): its methods then carry none, and only diffing reads it;
/// generation requires scopes.
fn parse_scopes(raw: &Value) -> Result<Vec<ScopeDef>, SpecError> {
    let Some(list) = raw.get("x-scopes") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        broken(
            "x-scopes",
            "empty or not a list: list the scopes methods declare",
        )
    })?;
    let mut scopes: Vec<ScopeDef> = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let name = str_field(s, "name")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| broken(format!("x-scopes[{i}].name"), "a lower-case word"))?;
        if scopes.iter().any(|d| d.name == name) {
            return Err(broken(
                format!("x-scopes[{i}]"),
                format!("duplicate scope `{name}`"),
            ));
        }
        scopes.push(ScopeDef {
            description: str_field(s, "description").unwrap_or_default(),
            name,
        });
    }
    if scopes.len() > 8 {
        return Err(broken(
            "x-scopes",
            "at most 8 scopes (a credential's set is one byte)",
        ));
    }
    Ok(scopes)
}

/// `components.tags`: a map from each tag's name to `{name, description}`, names lower-case
/// words (they name generated traits), descriptions required. Absent in documents from before
/// tags were declared (released 1.1.0); generation requires it.
fn parse_tags(raw: &Value) -> Result<Vec<TagDef>, SpecError> {
    let Some(map) = raw["components"].get("tags") else {
        return Ok(Vec::new());
    };
    let map = map.as_object().ok_or_else(|| {
        broken(
            "components.tags",
            "not an object: map each tag name to {name, description}",
        )
    })?;
    let mut tags = Vec::new();
    for (key, tag) in map {
        let at = format!("components.tags.{key}");
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(broken(at, "tag names are lower-case words"));
        }
        if tag["name"].as_str() != Some(key) {
            return Err(broken(
                format!("{at}.name"),
                format!("must be `{key}`, the key"),
            ));
        }
        let description = str_field(tag, "description")
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| {
                broken(
                    format!("{at}.description"),
                    "missing: say what the group is",
                )
            })?;
        tags.push(TagDef {
            name: key.clone(),
            description,
        });
    }
    Ok(tags)
}

fn parse_method(
    index: usize,
    m: &Value,
    schemas: &BTreeMap<String, Value>,
    event_names: &BTreeSet<&str>,
    error_names: &BTreeSet<&str>,
) -> Result<Method, SpecError> {
    let name =
        str_field(m, "name").ok_or_else(|| broken(format!("methods[{index}]"), "name missing"))?;
    let at = format!("methods[{index}] ({name})");
    if m.get("paramStructure").and_then(Value::as_str) != Some("by-name") {
        return Err(broken(&at, "paramStructure must be \"by-name\""));
    }
    let params = parse_params(&at, m)?;
    let result = schema_ref_name(&m["result"]["schema"])
        .ok_or_else(|| {
            broken(
                format!("{at}.result"),
                "schema must be a $ref to components.schemas",
            )
        })?
        .to_owned();
    if !schemas.contains_key(&result) {
        return Err(broken(
            format!("{at}.result"),
            format!("unknown schema `{result}`"),
        ));
    }
    let errors = method_errors(&at, m, error_names)?;
    let events = method_events(&at, m, event_names)?;
    let tag = m["tags"][0]["name"].as_str().unwrap_or("misc").to_owned();
    // Checked against `x-scopes` by the caller: missing is an error once the document has
    // scopes.
    let scope = str_field(m, "x-scope").unwrap_or_default();
    Ok(Method {
        scope,
        summary: str_field(m, "summary").unwrap_or_default(),
        description: str_field(m, "description").unwrap_or_default(),
        tag,
        params,
        result,
        errors,
        events,
        extension: m["x-extension"].as_bool().unwrap_or(false),
        examples: m["examples"].as_array().cloned().unwrap_or_default(),
        name,
    })
}

/// A method's by-name params.
fn parse_params(at: &str, m: &Value) -> Result<Vec<Param>, SpecError> {
    let mut params = Vec::new();
    for (pi, p) in m["params"]
        .as_array()
        .ok_or_else(|| broken(at, "params missing (use [] for none)"))?
        .iter()
        .enumerate()
    {
        let pname = str_field(p, "name")
            .ok_or_else(|| broken(format!("{at}.params[{pi}]"), "name missing"))?;
        params.push(Param {
            description: str_field(p, "description").unwrap_or_default(),
            required: p["required"].as_bool().unwrap_or(false),
            schema: p
                .get("schema")
                .cloned()
                .ok_or_else(|| broken(format!("{at}.params.{pname}"), "schema missing"))?,
            name: pname,
        });
    }
    Ok(params)
}

/// A method's `errors`: each a `$ref` to a declared error.
fn method_errors(
    at: &str,
    m: &Value,
    error_names: &BTreeSet<&str>,
) -> Result<Vec<String>, SpecError> {
    let mut errors = Vec::new();
    for e in m["errors"].as_array().into_iter().flatten() {
        let ename = e
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/errors/"))
            .ok_or_else(|| {
                broken(
                    format!("{at}.errors"),
                    "each error is a $ref to components.errors",
                )
            })?;
        if !error_names.contains(ename) {
            return Err(broken(
                format!("{at}.errors"),
                format!("unknown error `{ename}`"),
            ));
        }
        errors.push(ename.to_owned());
    }
    Ok(errors)
}

/// A method's `x-events`: each a declared event's name.
fn method_events(
    at: &str,
    m: &Value,
    event_names: &BTreeSet<&str>,
) -> Result<Vec<String>, SpecError> {
    let mut events = Vec::new();
    for e in m["x-events"].as_array().into_iter().flatten() {
        let ename = e
            .as_str()
            .ok_or_else(|| broken(format!("{at}.x-events"), "event names are strings"))?;
        if !event_names.contains(ename) {
            return Err(broken(
                format!("{at}.x-events"),
                format!("unknown event `{ename}`"),
            ));
        }
        events.push(ename.to_owned());
    }
    Ok(events)
}

/// A method's scope and tag are declared (`x-scopes`, `components.tags`; a document from
/// before scopes or tags has none), and its synthesized params type name is free.
fn check_method_refs(
    index: usize,
    method: &Method,
    scopes: &[ScopeDef],
    tags: &[TagDef],
    schemas: &BTreeMap<String, Value>,
) -> Result<(), SpecError> {
    let scope_names: BTreeSet<&str> = scopes.iter().map(|s| s.name.as_str()).collect();
    if scopes.is_empty() && method.scope.is_empty() {
        // A document from before scopes.
    } else if method.scope.is_empty() {
        return Err(broken(
            format!("methods[{index}] ({}).x-scope", method.name),
            "missing: every method declares the scope it needs (decision scopes)",
        ));
    } else if !scope_names.contains(method.scope.as_str()) {
        return Err(broken(
            format!("methods[{index}] ({}).x-scope", method.name),
            format!(
                "`{}` is not one of the scopes in x-scopes ({})",
                method.scope,
                scope_names.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if !tags.is_empty() && !tags.iter().any(|t| t.name == method.tag) {
        return Err(broken(
            format!("methods[{index}] ({}).tags", method.name),
            format!(
                "`{}` is not declared in components.tags ({}): declare it with a description",
                method.tag,
                tags.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if schemas.contains_key(&method.params_type()) {
        return Err(broken(
            format!("components.schemas.{}", method.params_type()),
            "this name is reserved for the synthesized params of a method",
        ));
    }
    Ok(())
}
