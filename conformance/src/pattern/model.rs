//! The compiled pattern tree ([`Pattern`], [`Matcher`]), what it can be asked (captures,
//! references, members, a description for reports), and what matching yields ([`Captures`],
//! [`Difference`]).

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde_json::{Map, Value};

use super::values::TypeName;
use crate::path::JsonPath;

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

impl Pattern {
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
