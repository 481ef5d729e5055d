//! Compiling an expected value into a [`Pattern`]: a malformed matcher is reported with its
//! path when the transcript is loaded.

use regex::Regex;
use serde_json::{Map, Value};

use super::model::{Matcher, Pattern, PatternError};
use super::values::TypeName;
use crate::path::JsonPath;

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
        let keys = MatcherKeys { map, path };
        // In this order, so the first bad key reported stays the same.
        let types = keys.types()?;
        let regex = keys.regex()?;
        let each = keys.each()?;
        let contains = keys.contains()?;
        let matcher = Matcher {
            any: keys.flag("$any")?,
            contains,
            types,
            regex,
            capture: keys.name("$capture")?,
            reference: keys.name("$ref")?,
            each,
            literal: map.get("$literal").cloned(),
            optional: keys.flag("$optional")?,
            absent: keys.flag("$absent")?,
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
}

/// The keys of one matcher object, each read and checked on its own.
struct MatcherKeys<'a> {
    map: &'a Map<String, Value>,
    path: &'a JsonPath,
}

impl MatcherKeys<'_> {
    fn err(&self, message: String) -> PatternError {
        PatternError {
            path: self.path.to_string(),
            message,
        }
    }

    fn flag(&self, key: &str) -> Result<bool, PatternError> {
        match self.map.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(format!("`{key}` must be true or false, not {other}"))),
        }
    }

    fn name(&self, key: &str) -> Result<Option<String>, PatternError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(self.err(format!("`{key}` needs a non-empty name, not {other}"))),
        }
    }

    /// `$type`: one type name or a non-empty list of them.
    fn types(&self) -> Result<Vec<TypeName>, PatternError> {
        match self.map.get("$type") {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![parse_type(s).map_err(|m| self.err(m))?]),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => parse_type(s).map_err(|m| self.err(m)),
                    other => {
                        Err(self.err(format!("`$type` entries must be type names, not {other}")))
                    }
                })
                .collect(),
            Some(other) => Err(self.err(format!(
                "`$type` must be a type name or a list of them, not {other}"
            ))),
        }
    }

    fn regex(&self) -> Result<Option<Regex>, PatternError> {
        match self.map.get("$regex") {
            None => Ok(None),
            Some(Value::String(s)) => Regex::new(s)
                .map(Some)
                .map_err(|e| self.err(format!("`$regex` {s:?} does not compile: {e}"))),
            Some(other) => Err(self.err(format!("`$regex` must be a string, not {other}"))),
        }
    }

    fn each(&self) -> Result<Option<Box<Pattern>>, PatternError> {
        match self.map.get("$each") {
            None => Ok(None),
            Some(v) => Ok(Some(Box::new(Pattern::compile_at(
                v,
                &self.path.index_any(),
            )?))),
        }
    }

    fn contains(&self) -> Result<Option<Vec<Pattern>>, PatternError> {
        match self.map.get("$contains") {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| Pattern::compile_at(v, &self.path.index_any()))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.err(format!(
                "`$contains` must be a list of expected elements, not {other}"
            ))),
        }
    }
}

fn parse_type(name: &str) -> Result<TypeName, String> {
    TypeName::parse(name).ok_or_else(|| {
        format!(
            "unknown `$type` {name:?}; use string, integer, number, boolean, object, array or null"
        )
    })
}
