//! Turning a [`Pattern`] into the value it stands for: with examples and placeholders
//! ([`concretize`], for `serve` and `validate`) or only with captured values ([`substitute`],
//! for frames to send).

use serde_json::{Map, Value};

use super::model::{Captures, Pattern, PatternError};
use crate::path::JsonPath;

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
