//! Expected values and their matchers (`$any`, `$type`, `$regex`, `$capture`, `$ref`, `$each`,
//! `$contains`, `$optional`, `$absent`, `$example`, `$literal`, and `$closed` on objects).
//!
//! A transcript's expected frame is compiled once into a [`Pattern`] tree, so a malformed
//! matcher is reported when the transcript is loaded, not in the middle of a run. Matching
//! collects every difference with the JSON path where it occurred, because a report that names
//! only the first one makes people fix failures one run at a time.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde_json::{Map, Value};

use crate::path::JsonPath;

/// A JSON type name as used by `$type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

impl TypeName {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "object" => Self::Object,
            "array" => Self::Array,
            "null" => Self::Null,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
            Self::Null => "null",
        }
    }

    /// Whether `value` is of this type; `integer` is a number without a fraction (JSON Schema's
    /// definition), and every integer is also a `number`.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => is_integer(value),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Object => value.is_object(),
            Self::Array => value.is_array(),
            Self::Null => value.is_null(),
        }
    }

    /// A value of this type, for playing a matcher that has no `$example`.
    fn placeholder(self) -> Value {
        match self {
            Self::String => Value::String(String::new()),
            Self::Integer | Self::Number => Value::from(0),
            Self::Boolean => Value::Bool(false),
            Self::Object => Value::Object(Map::new()),
            Self::Array => Value::Array(Vec::new()),
            Self::Null => Value::Null,
        }
    }
}

/// The JSON type of a value, for messages.
pub fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// Two JSON values are equal; numbers compare by value (`1` equals `1.0`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A matcher object such as `{"$type": "integer", "$capture": "n"}`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub any: bool,
    pub types: Vec<TypeName>,
    pub regex: Option<Regex>,
    pub capture: Option<String>,
    pub reference: Option<String>,
    pub each: Option<Box<Pattern>>,
    /// Each of these matches at least one element.
    pub contains: Option<Vec<Pattern>>,
    pub literal: Option<Value>,
    /// The member may be missing.
    pub optional: bool,
    /// The member must be missing.
    pub absent: bool,
    /// The value `serve` plays and `validate` checks in place of the matcher.
    pub example: Option<Value>,
}

/// A compiled expected value.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A literal scalar (string, number, boolean, null).
    Scalar(Value),
    Array(Vec<Pattern>),
    Object {
        members: Vec<(String, Pattern)>,
        /// `"$closed": true`: members not listed are differences.
        closed: bool,
        /// `"$optional": true`: the member holding this object may be missing.
        optional: bool,
        /// `"$example"`: the value `serve` plays for this object.
        example: Option<Value>,
    },
    Matcher(Matcher),
}

/// Why a pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PatternError {
    pub path: String,
    pub message: String,
}

const MATCHER_KEYS: &[&str] = &[
    "$any",
    "$type",
    "$regex",
    "$capture",
    "$ref",
    "$each",
    "$contains",
    "$optional",
    "$absent",
    "$example",
    "$literal",
];

/// `$` keys an expected object may carry beside its members.
const OBJECT_MODIFIERS: &[&str] = &["$closed", "$optional", "$example"];

/// Whether an object is a matcher: only `$` keys, and not just `$closed`. An object with
/// members is an expected object, which may carry [`OBJECT_MODIFIERS`].
fn is_matcher(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$')) && !map.keys().all(|k| k == "$closed")
}

impl Pattern {
    /// Compiles an expected value. `path` is where it sits in its frame, for messages.
    pub fn compile(value: &Value) -> Result<Self, PatternError> {
        Self::compile_at(value, &JsonPath::root())
    }

    fn compile_at(value: &Value, path: &JsonPath) -> Result<Self, PatternError> {
        let err = |message: String| PatternError {
            path: path.to_string(),
            message,
        };
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Self::compile_at(v, &path.index(i)))
                .collect::<Result<Vec<_>, _>>()
                .map(Pattern::Array),
            Value::Object(map) if is_matcher(map) => {
                Matcher::compile(map, path).map(Pattern::Matcher)
            }
            Value::Object(map) => {
                let flag = |key: &str| match map.get(key) {
                    None => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(other) => Err(err(format!("`{key}` must be true or false, not {other}"))),
                };
                if let Some(k) = map
                    .keys()
                    .find(|k| k.starts_with('$') && !OBJECT_MODIFIERS.contains(&k.as_str()))
                {
                    return Err(err(format!(
                        "`{k}` cannot stand beside members; an expected object may only carry {} (a matcher has `$` keys only)",
                        OBJECT_MODIFIERS.join(", ")
                    )));
                }
                let members = map
                    .iter()
                    .filter(|(k, _)| !k.starts_with('$'))
                    .map(|(k, v)| Ok((k.clone(), Self::compile_at(v, &path.key(k))?)))
                    .collect::<Result<Vec<_>, PatternError>>()?;
                Ok(Pattern::Object {
                    members,
                    closed: flag("$closed")?,
                    optional: flag("$optional")?,
                    example: map.get("$example").cloned(),
                })
            }
            scalar => Ok(Pattern::Scalar(scalar.clone())),
        }
    }

    /// A literal pattern for `value` with every object closed and no matchers (used for frames
    /// a client must send exactly).
    pub fn exact(value: &Value) -> Self {
        match value {
            Value::Array(items) => Pattern::Array(items.iter().map(Pattern::exact).collect()),
            Value::Object(map) => Pattern::Object {
                members: map
                    .iter()
                    .map(|(k, v)| (k.clone(), Pattern::exact(v)))
                    .collect(),
                closed: true,
                optional: false,
                example: None,
            },
            scalar => Pattern::Scalar(scalar.clone()),
        }
    }

    /// Names captured anywhere in the pattern, in document order.
    pub fn captures(&self, out: &mut Vec<String>) {
        match self {
            Pattern::Scalar(_) => {}
            Pattern::Array(items) => items.iter().for_each(|p| p.captures(out)),
            Pattern::Object { members, .. } => members.iter().for_each(|(_, p)| p.captures(out)),
            Pattern::Matcher(m) => {
                if let Some(name) = &m.capture {
                    out.push(name.clone());
                }
                if let Some(each) = &m.each {
                    each.captures(out);
                }
                m.contains.iter().flatten().for_each(|p| p.captures(out));
            }
        }
    }

    /// Names referenced anywhere in the pattern.
    pub fn references(&self, out: &mut Vec<String>) {
        match self {
            Pattern::Scalar(_) => {}
            Pattern::Array(items) => items.iter().for_each(|p| p.references(out)),
            Pattern::Object { members, .. } => members.iter().for_each(|(_, p)| p.references(out)),
            Pattern::Matcher(m) => {
                if let Some(name) = &m.reference {
                    out.push(name.clone());
                }
                if let Some(each) = &m.each {
                    each.references(out);
                }
                m.contains.iter().flatten().for_each(|p| p.references(out));
            }
        }
    }

    /// Paths of matchers other than `$ref`/`$literal` (the only ones a frame to send may hold).
    pub fn non_send_matchers(&self, path: &JsonPath, out: &mut Vec<String>) {
        match self {
            Pattern::Scalar(_) => {}
            Pattern::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, p)| p.non_send_matchers(&path.index(i), out)),
            Pattern::Object {
                members,
                closed,
                optional,
                example,
            } => {
                if *closed || *optional || example.is_some() {
                    out.push(format!("{path} ($closed, $optional or $example)"));
                }
                members
                    .iter()
                    .for_each(|(k, p)| p.non_send_matchers(&path.key(k), out))
            }
            Pattern::Matcher(m) => {
                if m.reference.is_none() && m.literal.is_none() {
                    out.push(path.to_string());
                }
            }
        }
    }

    /// The member at `key` of an object pattern, when it is a literal.
    pub fn literal_member(&self, key: &str) -> Option<&Value> {
        match self {
            Pattern::Object { members, .. } => {
                members
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, p)| match p {
                        Pattern::Scalar(v) => Some(v),
                        Pattern::Matcher(m) => m.literal.as_ref(),
                        _ => None,
                    })
            }
            _ => None,
        }
    }

    /// The member pattern at `key` of an object pattern.
    pub fn member(&self, key: &str) -> Option<&Pattern> {
        match self {
            Pattern::Object { members, .. } => {
                members.iter().find(|(k, _)| k == key).map(|(_, p)| p)
            }
            _ => None,
        }
    }

    /// Whether the object pattern lists `key`.
    pub fn has_member(&self, key: &str) -> bool {
        self.member(key).is_some()
    }
}

impl Matcher {
    fn compile(map: &Map<String, Value>, path: &JsonPath) -> Result<Self, PatternError> {
        let err = |message: String| PatternError {
            path: path.to_string(),
            message,
        };
        if let Some(unknown) = map.keys().find(|k| !MATCHER_KEYS.contains(&k.as_str())) {
            return Err(err(format!(
                "unknown matcher key `{unknown}`; matchers are {} (write a literal object with `$` keys as {{\"$literal\": ...}})",
                MATCHER_KEYS.join(", ")
            )));
        }
        let flag = |key: &str| -> Result<bool, PatternError> {
            match map.get(key) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(err(format!("`{key}` must be true or false, not {other}"))),
            }
        };
        let name = |key: &str| -> Result<Option<String>, PatternError> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(other) => Err(err(format!("`{key}` needs a non-empty name, not {other}"))),
            }
        };
        let types = match map.get("$type") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![parse_type(s).map_err(err)?],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => parse_type(s).map_err(err),
                    other => Err(err(format!(
                        "`$type` entries must be type names, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(err(format!(
                    "`$type` must be a type name or a list of them, not {other}"
                )));
            }
        };
        let regex = match map.get("$regex") {
            None => None,
            Some(Value::String(s)) => Some(
                Regex::new(s).map_err(|e| err(format!("`$regex` {s:?} does not compile: {e}")))?,
            ),
            Some(other) => return Err(err(format!("`$regex` must be a string, not {other}"))),
        };
        let each = match map.get("$each") {
            None => None,
            Some(v) => Some(Box::new(Pattern::compile_at(v, &path.index_any())?)),
        };
        let contains = match map.get("$contains") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| Pattern::compile_at(v, &path.index_any()))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(err(format!(
                    "`$contains` must be a list of expected elements, not {other}"
                )));
            }
        };
        let matcher = Matcher {
            any: flag("$any")?,
            contains,
            types,
            regex,
            capture: name("$capture")?,
            reference: name("$ref")?,
            each,
            literal: map.get("$literal").cloned(),
            optional: flag("$optional")?,
            absent: flag("$absent")?,
            example: map.get("$example").cloned(),
        };
        if matcher.literal.is_some() && map.len() > 1 + usize::from(map.contains_key("$optional")) {
            return Err(err(
                "`$literal` cannot be combined with other matchers".to_owned()
            ));
        }
        if matcher.absent && map.len() > 1 {
            return Err(err("`$absent` stands alone".to_owned()));
        }
        Ok(matcher)
    }

    /// A short description for reports: the matcher as written, without `$example`.
    pub fn describe(&self) -> Value {
        let mut map = Map::new();
        if self.any {
            map.insert("$any".into(), Value::Bool(true));
        }
        match self.types.as_slice() {
            [] => {}
            [one] => {
                map.insert("$type".into(), Value::from(one.name()));
            }
            many => {
                map.insert(
                    "$type".into(),
                    Value::from(many.iter().map(|t| t.name()).collect::<Vec<_>>()),
                );
            }
        }
        if let Some(r) = &self.regex {
            map.insert("$regex".into(), Value::from(r.as_str()));
        }
        if let Some(c) = &self.capture {
            map.insert("$capture".into(), Value::from(c.as_str()));
        }
        if let Some(r) = &self.reference {
            map.insert("$ref".into(), Value::from(r.as_str()));
        }
        if let Some(e) = &self.each {
            map.insert("$each".into(), e.describe());
        }
        if let Some(c) = &self.contains {
            map.insert(
                "$contains".into(),
                Value::Array(c.iter().map(Pattern::describe).collect()),
            );
        }
        if let Some(l) = &self.literal {
            map.insert("$literal".into(), l.clone());
        }
        if self.optional {
            map.insert("$optional".into(), Value::Bool(true));
        }
        if self.absent {
            map.insert("$absent".into(), Value::Bool(true));
        }
        Value::Object(map)
    }
}

fn parse_type(name: &str) -> Result<TypeName, String> {
    TypeName::parse(name).ok_or_else(|| {
        format!(
            "unknown `$type` {name:?}; use string, integer, number, boolean, object, array or null"
        )
    })
}

impl Pattern {
    /// The pattern as JSON, for reports (matchers without their `$example`).
    pub fn describe(&self) -> Value {
        match self {
            Pattern::Scalar(v) => v.clone(),
            Pattern::Array(items) => Value::Array(items.iter().map(Pattern::describe).collect()),
            Pattern::Object {
                members,
                closed,
                optional,
                ..
            } => {
                let mut map: Map<String, Value> = members
                    .iter()
                    .map(|(k, p)| (k.clone(), p.describe()))
                    .collect();
                if *closed {
                    map.insert("$closed".into(), Value::Bool(true));
                }
                if *optional {
                    map.insert("$optional".into(), Value::Bool(true));
                }
                Value::Object(map)
            }
            Pattern::Matcher(m) => m.describe(),
        }
    }
}

/// Values bound by `$capture`, shared by every connection of one transcript.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    values: BTreeMap<String, Value>,
}

impl Captures {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn bind(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_owned(), value);
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.values.keys()
    }
}

/// One way in which an actual value differs from the expected one.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where, dotted from the frame root (`result.sessions[0].id`).
    pub path: String,
    pub message: String,
    pub expected: Value,
    /// `None` when the member is missing.
    pub received: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.path.is_empty() {
            "(frame)"
        } else {
            &self.path
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Matches `actual` against `pattern`, binding captures. Captures are bound even when other
/// members differ, so later steps that refer to them can still run.
pub fn match_value(pattern: &Pattern, actual: &Value, captures: &mut Captures) -> Vec<Difference> {
    let mut diffs = Vec::new();
    match_at(
        pattern,
        Some(actual),
        &JsonPath::root(),
        captures,
        &mut diffs,
    );
    diffs
}

fn match_at(
    pattern: &Pattern,
    actual: Option<&Value>,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    let mut differ = |message: String, received: Option<&Value>| {
        diffs.push(Difference {
            path: path.to_string(),
            message,
            expected: pattern.describe(),
            received: received.cloned(),
        })
    };
    match pattern {
        Pattern::Matcher(m) => {
            let Some(actual) = actual else {
                if !(m.optional || m.absent) {
                    differ("missing".to_owned(), None);
                }
                return;
            };
            match_matcher(m, actual, path, captures, diffs);
        }
        Pattern::Object { optional: true, .. } if actual.is_none() => {}
        _ if actual.is_none() => differ("missing".to_owned(), None),
        Pattern::Scalar(expected) => {
            let Some(actual) = actual else { return };
            if !json_equal(expected, actual) {
                differ(
                    format!("expected {expected}, received {}", short(actual)),
                    Some(actual),
                );
            }
        }
        Pattern::Array(items) => {
            let Some(actual) = actual else { return };
            let Some(values) = actual.as_array() else {
                differ(
                    format!("expected an array, received {}", type_of(actual)),
                    Some(actual),
                );
                return;
            };
            if values.len() != items.len() {
                differ(
                    format!(
                        "expected {} element(s), received {}",
                        items.len(),
                        values.len()
                    ),
                    Some(actual),
                );
            }
            for (i, (p, v)) in items.iter().zip(values).enumerate() {
                match_at(p, Some(v), &path.index(i), captures, diffs);
            }
        }
        Pattern::Object {
            members, closed, ..
        } => {
            let Some(actual) = actual else { return };
            let Some(map) = actual.as_object() else {
                differ(
                    format!("expected an object, received {}", type_of(actual)),
                    Some(actual),
                );
                return;
            };
            for (key, p) in members {
                match_at(p, map.get(key), &path.key(key), captures, diffs);
            }
            if *closed {
                for (key, v) in map {
                    if !members.iter().any(|(k, _)| k == key) {
                        diffs.push(Difference {
                            path: path.key(key).to_string(),
                            message: "unexpected member (the expected object is closed)".to_owned(),
                            expected: Value::Null,
                            received: Some(v.clone()),
                        });
                    }
                }
            }
        }
    }
}

fn match_matcher(
    m: &Matcher,
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    let mut differ = |message: String| {
        diffs.push(Difference {
            path: path.to_string(),
            message,
            expected: m.describe(),
            received: Some(actual.clone()),
        })
    };
    if m.absent {
        differ("must be absent".to_owned());
        return;
    }
    if let Some(literal) = &m.literal {
        if !json_equal(literal, actual) {
            differ(format!("expected {literal}, received {}", short(actual)));
        }
        return;
    }
    if !m.types.is_empty() && !m.types.iter().any(|t| t.accepts(actual)) {
        let names: Vec<&str> = m.types.iter().map(|t| t.name()).collect();
        differ(format!(
            "expected {}, received {} {}",
            names.join(" or "),
            type_of(actual),
            short(actual)
        ));
        return;
    }
    if let Some(regex) = &m.regex {
        match actual.as_str() {
            Some(s) if regex.is_match(s) => {}
            Some(s) => differ(format!("{s:?} does not match /{}/", regex.as_str())),
            None => differ(format!(
                "expected a string matching /{}/, received {}",
                regex.as_str(),
                type_of(actual)
            )),
        }
    }
    if let Some(each) = &m.each {
        match actual.as_array() {
            Some(values) => {
                for (i, v) in values.iter().enumerate() {
                    match_at(each, Some(v), &path.index(i), captures, diffs);
                }
            }
            None => diffs.push(Difference {
                path: path.to_string(),
                message: format!("expected an array, received {}", type_of(actual)),
                expected: m.describe(),
                received: Some(actual.clone()),
            }),
        }
    }
    if let Some(wanted) = &m.contains {
        match actual.as_array() {
            Some(values) => {
                for (i, p) in wanted.iter().enumerate() {
                    let hit = values.iter().find_map(|v| {
                        let mut trial = captures.clone();
                        let mut d = Vec::new();
                        match_at(p, Some(v), path, &mut trial, &mut d);
                        d.is_empty().then_some(trial)
                    });
                    match hit {
                        Some(trial) => *captures = trial,
                        None => diffs.push(Difference {
                            path: path.to_string(),
                            message: format!(
                                "no element matches expected element {i} of `$contains`: {}",
                                short(&p.describe())
                            ),
                            expected: p.describe(),
                            received: Some(actual.clone()),
                        }),
                    }
                }
            }
            None => diffs.push(Difference {
                path: path.to_string(),
                message: format!("expected an array, received {}", type_of(actual)),
                expected: m.describe(),
                received: Some(actual.clone()),
            }),
        }
    }
    if let Some(name) = &m.reference {
        match captures.get(name) {
            Some(bound) if json_equal(bound, actual) => {}
            Some(bound) => diffs.push(Difference {
                path: path.to_string(),
                message: format!(
                    "expected the value captured as `{name}` ({}), received {}",
                    short(bound),
                    short(actual)
                ),
                expected: bound.clone(),
                received: Some(actual.clone()),
            }),
            None => diffs.push(Difference {
                path: path.to_string(),
                message: format!("`$ref` to `{name}`, which was not captured before"),
                expected: m.describe(),
                received: Some(actual.clone()),
            }),
        }
    }
    if let Some(name) = &m.capture {
        match captures.get(name) {
            Some(bound) if !json_equal(bound, actual) => diffs.push(Difference {
                path: path.to_string(),
                message: format!(
                    "`{name}` was captured as {} before; received {}",
                    short(bound),
                    short(actual)
                ),
                expected: bound.clone(),
                received: Some(actual.clone()),
            }),
            Some(_) => {}
            None => captures.bind(name, actual.clone()),
        }
    }
}

/// A value shortened for one-line messages.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Builds the concrete value a pattern stands for: `$example`s (or a value of the `$type`),
/// captured values for `$ref`. Paths where no concrete value is known (`$any` or `$regex`
/// without an example, `$ref` to an unknown capture) are returned as holes; `$capture`s bind
/// the value produced.
pub fn concretize(pattern: &Pattern, captures: &mut Captures) -> (Value, Vec<String>) {
    let mut holes = Vec::new();
    let value =
        concrete_at(pattern, &JsonPath::root(), captures, &mut holes).unwrap_or(Value::Null);
    (value, holes)
}

fn concrete_at(
    pattern: &Pattern,
    path: &JsonPath,
    captures: &mut Captures,
    holes: &mut Vec<String>,
) -> Option<Value> {
    match pattern {
        Pattern::Scalar(v) => Some(v.clone()),
        Pattern::Array(items) => Some(Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, p)| concrete_at(p, &path.index(i), captures, holes))
                .collect(),
        )),
        Pattern::Object {
            members,
            optional,
            example,
            ..
        } => {
            if let Some(example) = example {
                return Some(example.clone());
            }
            if *optional {
                return None;
            }
            let mut map = Map::new();
            for (key, p) in members {
                if let Some(v) = concrete_at(p, &path.key(key), captures, holes) {
                    map.insert(key.clone(), v);
                }
            }
            Some(Value::Object(map))
        }
        Pattern::Matcher(m) => {
            if m.absent {
                return None;
            }
            if m.optional && m.example.is_none() {
                return None;
            }
            let value = if let Some(l) = &m.literal {
                l.clone()
            } else if let Some(e) = &m.example {
                e.clone()
            } else if let Some(bound) = m.reference.as_ref().and_then(|r| captures.get(r)) {
                bound.clone()
            } else if let Some(bound) = m.capture.as_ref().and_then(|c| captures.get(c)) {
                bound.clone()
            } else if let Some(wanted) = &m.contains {
                Value::Array(
                    wanted
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| concrete_at(p, &path.index(i), captures, holes))
                        .collect(),
                )
            } else if m.each.is_some() {
                Value::Array(Vec::new())
            } else if m.any || m.regex.is_some() || m.reference.is_some() || m.types.is_empty() {
                holes.push(path.to_string());
                Value::Null
            } else {
                m.types[0].placeholder()
            };
            if let Some(name) = &m.capture
                && captures.get(name).is_none()
            {
                captures.bind(name, value.clone());
            }
            Some(value)
        }
    }
}

/// Replaces `$ref` (and `$literal`) matchers in a frame to send by their values. Fails with the
/// path of the first reference that has no captured value yet.
pub fn substitute(pattern: &Pattern, captures: &Captures) -> Result<Value, PatternError> {
    substitute_at(pattern, &JsonPath::root(), captures)
}

fn substitute_at(
    pattern: &Pattern,
    path: &JsonPath,
    captures: &Captures,
) -> Result<Value, PatternError> {
    match pattern {
        Pattern::Scalar(v) => Ok(v.clone()),
        Pattern::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| substitute_at(p, &path.index(i), captures))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Pattern::Object { members, .. } => {
            let mut map = Map::new();
            for (key, p) in members {
                map.insert(key.clone(), substitute_at(p, &path.key(key), captures)?);
            }
            Ok(Value::Object(map))
        }
        Pattern::Matcher(m) => {
            if let Some(l) = &m.literal {
                return Ok(l.clone());
            }
            if let Some(name) = &m.reference {
                return captures.get(name).cloned().ok_or_else(|| PatternError {
                    path: path.to_string(),
                    message: format!("`$ref` to `{name}`, which was not captured before"),
                });
            }
            Err(PatternError {
                path: path.to_string(),
                message: "a frame to send may only hold `$ref` and `$literal` matchers".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expected: Value, actual: Value) -> Vec<Difference> {
        let p = Pattern::compile(&expected).unwrap();
        match_value(&p, &actual, &mut Captures::default())
    }

    #[test]
    fn literals_and_open_objects() {
        assert!(
            check(
                json!({"id": 1, "result": {"a": 1}}),
                json!({"id": 1, "result": {"a": 1.0, "b": 2}})
            )
            .is_empty()
        );
        let d = check(
            json!({"id": 1, "result": {"a": 1}}),
            json!({"id": 1, "result": {"a": 2}}),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "result.a");
        let d = check(json!({"a": 1, "$closed": true}), json!({"a": 1, "b": 2}));
        assert_eq!(d[0].path, "b");
    }

    #[test]
    fn matchers() {
        assert!(check(json!({"u": {"$type": "integer"}}), json!({"u": 5})).is_empty());
        let d = check(
            json!({"result": {"uptime": {"$type": "integer"}}}),
            json!({"result": {"uptime": "soon"}}),
        );
        assert_eq!(d[0].path, "result.uptime");
        assert!(d[0].message.contains("expected integer, received string"));
        assert!(check(json!({"c": {"$regex": "^[A-Z]+$"}}), json!({"c": "ABC"})).is_empty());
        assert_eq!(
            check(json!({"c": {"$regex": "^[A-Z]+$"}}), json!({"c": "abc"})).len(),
            1
        );
        assert!(check(json!({"x": {"$any": true}}), json!({"x": [1]})).is_empty());
        assert_eq!(check(json!({"x": {"$any": true}}), json!({})).len(), 1);
        assert!(
            check(
                json!({"x": {"$optional": true, "$type": "string"}}),
                json!({})
            )
            .is_empty()
        );
        assert_eq!(
            check(json!({"x": {"$absent": true}}), json!({"x": 1})).len(),
            1
        );
        assert!(
            check(
                json!({"x": {"$each": {"$type": "integer"}}}),
                json!({"x": [1, 2]})
            )
            .is_empty()
        );
        assert_eq!(
            check(
                json!({"x": {"$each": {"$type": "integer"}}}),
                json!({"x": [1, "a"]})
            )[0]
            .path,
            "x[1]"
        );
        assert!(
            check(
                json!({"x": {"$literal": {"$type": 1}}}),
                json!({"x": {"$type": 1}})
            )
            .is_empty()
        );
        assert_eq!(
            check(json!({"a": {"b.c": 1}}), json!({"a": {"b.c": 2}}))[0].path,
            "a[\"b.c\"]"
        );
        let contains =
            json!({"x": {"$contains": [{"code": {"$capture": "c"}, "channel": "telegram"}]}});
        let p = Pattern::compile(&contains).unwrap();
        let mut caps = Captures::default();
        assert!(match_value(&p, &json!({"x": [{"code": "A", "channel": "slack"}, {"code": "B", "channel": "telegram"}]}), &mut caps).is_empty());
        assert_eq!(caps.get("c"), Some(&json!("B")));
        assert_eq!(
            check(contains, json!({"x": [{"code": "A", "channel": "slack"}]})).len(),
            1
        );
    }

    #[test]
    fn captures_and_refs() {
        let mut caps = Captures::default();
        let p = Pattern::compile(&json!({"id": {"$capture": "s"}})).unwrap();
        assert!(match_value(&p, &json!({"id": "abc"}), &mut caps).is_empty());
        let r = Pattern::compile(&json!({"sessionId": {"$ref": "s"}})).unwrap();
        assert!(match_value(&r, &json!({"sessionId": "abc"}), &mut caps).is_empty());
        assert_eq!(
            match_value(&r, &json!({"sessionId": "xyz"}), &mut caps).len(),
            1
        );
        assert_eq!(substitute(&r, &caps).unwrap(), json!({"sessionId": "abc"}));
        assert!(
            substitute(
                &Pattern::compile(&json!({"a": {"$ref": "nope"}})).unwrap(),
                &caps
            )
            .is_err()
        );
    }

    #[test]
    fn optional_objects() {
        let p = json!({"result": {"$optional": true, "a": 1}, "error": {"$optional": true, "code": 5, "$example": {"code": 5, "message": "m"}}});
        assert!(check(p.clone(), json!({"result": {"a": 1}})).is_empty());
        assert!(check(p.clone(), json!({"error": {"code": 5}})).is_empty());
        assert_eq!(
            check(p.clone(), json!({"error": {"code": 4}}))[0].path,
            "error.code"
        );
        let (v, holes) = concretize(&Pattern::compile(&p).unwrap(), &mut Captures::default());
        assert_eq!(v, json!({"error": {"code": 5, "message": "m"}}));
        assert!(holes.is_empty());
        assert!(Pattern::compile(&json!({"a": 1, "$type": "object"})).is_err());
    }

    #[test]
    fn bad_matchers_are_rejected() {
        assert!(Pattern::compile(&json!({"$typo": 1})).is_err());
        assert!(Pattern::compile(&json!({"$type": "int"})).is_err());
        assert!(
            Pattern::compile(&json!({"a": {"$regex": "("}}))
                .unwrap_err()
                .path
                == "a"
        );
    }

    #[test]
    fn concretize_uses_examples() {
        let p = Pattern::compile(&json!({"a": {"$type": "integer", "$example": 7}, "b": {"$any": true}, "c": {"$type": "string"}, "d": {"$optional": true}})).unwrap();
        let (v, holes) = concretize(&p, &mut Captures::default());
        assert_eq!(v, json!({"a": 7, "b": null, "c": ""}));
        assert_eq!(holes, vec!["b".to_owned()]);
    }
}
