//! Matching an actual value against a [`Pattern`], collecting every difference.

use regex::Regex;
use serde_json::Value;

use super::model::{Captures, Difference, Matcher, Pattern};
use super::values::{json_equal, short, type_of};
use crate::path::JsonPath;

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
    let Some(actual) = actual else {
        if !may_be_missing(pattern) {
            diffs.push(difference(
                path,
                "missing".to_owned(),
                pattern.describe(),
                None,
            ));
        }
        return;
    };
    match pattern {
        Pattern::Matcher(m) => match_matcher(m, actual, path, captures, diffs),
        Pattern::Scalar(expected) => {
            if !json_equal(expected, actual) {
                diffs.push(difference(
                    path,
                    format!("expected {expected}, received {}", short(actual)),
                    pattern.describe(),
                    Some(actual),
                ));
            }
        }
        Pattern::Array(items) => match_array(pattern, items, actual, path, captures, diffs),
        Pattern::Object {
            members, closed, ..
        } => match_object(pattern, members, *closed, actual, path, captures, diffs),
    }
}

/// Whether a member may be missing: an `$optional` or `$absent` matcher, an `$optional` object.
fn may_be_missing(pattern: &Pattern) -> bool {
    match pattern {
        Pattern::Matcher(m) => m.optional || m.absent,
        Pattern::Object { optional, .. } => *optional,
        Pattern::Scalar(_) | Pattern::Array(_) => false,
    }
}

fn difference(
    path: &JsonPath,
    message: String,
    expected: Value,
    received: Option<&Value>,
) -> Difference {
    Difference {
        path: path.to_string(),
        message,
        expected,
        received: received.cloned(),
    }
}

/// An expected array: the same length, element by element.
fn match_array(
    pattern: &Pattern,
    items: &[Pattern],
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    let Some(values) = actual.as_array() else {
        diffs.push(difference(
            path,
            format!("expected an array, received {}", type_of(actual)),
            pattern.describe(),
            Some(actual),
        ));
        return;
    };
    if values.len() != items.len() {
        diffs.push(difference(
            path,
            format!(
                "expected {} element(s), received {}",
                items.len(),
                values.len()
            ),
            pattern.describe(),
            Some(actual),
        ));
    }
    for (i, (p, v)) in items.iter().zip(values).enumerate() {
        match_at(p, Some(v), &path.index(i), captures, diffs);
    }
}

/// An expected object: each listed member; when `closed`, no other member.
fn match_object(
    pattern: &Pattern,
    members: &[(String, Pattern)],
    closed: bool,
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    let Some(map) = actual.as_object() else {
        diffs.push(difference(
            path,
            format!("expected an object, received {}", type_of(actual)),
            pattern.describe(),
            Some(actual),
        ));
        return;
    };
    for (key, p) in members {
        match_at(p, map.get(key), &path.key(key), captures, diffs);
    }
    if closed {
        for (key, v) in map {
            if !members.iter().any(|(k, _)| k == key) {
                diffs.push(difference(
                    &path.key(key),
                    "unexpected member (the expected object is closed)".to_owned(),
                    Value::Null,
                    Some(v),
                ));
            }
        }
    }
}

/// A present value against a matcher: `$absent`, `$literal` and `$type` decide alone; the
/// others (`$regex`, `$each`, `$contains`, `$ref`, `$capture`) are all checked.
fn match_matcher(
    m: &Matcher,
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    let mismatch = |message: String| difference(path, message, m.describe(), Some(actual));
    if m.absent {
        diffs.push(mismatch("must be absent".to_owned()));
        return;
    }
    if let Some(literal) = &m.literal {
        if !json_equal(literal, actual) {
            diffs.push(mismatch(format!(
                "expected {literal}, received {}",
                short(actual)
            )));
        }
        return;
    }
    if !m.types.is_empty() && !m.types.iter().any(|t| t.accepts(actual)) {
        let names: Vec<&str> = m.types.iter().map(|t| t.name()).collect();
        diffs.push(mismatch(format!(
            "expected {}, received {} {}",
            names.join(" or "),
            type_of(actual),
            short(actual)
        )));
        return;
    }
    if let Some(message) = m.regex.as_ref().and_then(|r| regex_mismatch(r, actual)) {
        diffs.push(mismatch(message));
    }
    if let Some(each) = &m.each {
        match actual.as_array() {
            Some(values) => {
                for (i, v) in values.iter().enumerate() {
                    match_at(each, Some(v), &path.index(i), captures, diffs);
                }
            }
            None => diffs.push(mismatch(format!(
                "expected an array, received {}",
                type_of(actual)
            ))),
        }
    }
    if let Some(wanted) = &m.contains {
        match actual.as_array() {
            Some(values) => match_contains(wanted, values, actual, path, captures, diffs),
            None => diffs.push(mismatch(format!(
                "expected an array, received {}",
                type_of(actual)
            ))),
        }
    }
    if let Some(name) = &m.reference {
        diffs.extend(check_reference(m, name, actual, path, captures));
    }
    if let Some(name) = &m.capture {
        diffs.extend(bind_capture(name, actual, path, captures));
    }
}

/// Why `actual` fails `$regex` (`None`: a matching string).
fn regex_mismatch(regex: &Regex, actual: &Value) -> Option<String> {
    match actual.as_str() {
        Some(s) if regex.is_match(s) => None,
        Some(s) => Some(format!("{s:?} does not match /{}/", regex.as_str())),
        None => Some(format!(
            "expected a string matching /{}/, received {}",
            regex.as_str(),
            type_of(actual)
        )),
    }
}

/// `$contains`: each wanted element matches some element of `values`; the captures of the
/// first element that matches are kept.
fn match_contains(
    wanted: &[Pattern],
    values: &[Value],
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
    diffs: &mut Vec<Difference>,
) {
    for (i, p) in wanted.iter().enumerate() {
        let hit = values.iter().find_map(|v| {
            let mut trial = captures.clone();
            let mut d = Vec::new();
            match_at(p, Some(v), path, &mut trial, &mut d);
            d.is_empty().then_some(trial)
        });
        match hit {
            Some(trial) => *captures = trial,
            None => diffs.push(difference(
                path,
                format!(
                    "no element matches expected element {i} of `$contains`: {}",
                    short(&p.describe())
                ),
                p.describe(),
                Some(actual),
            )),
        }
    }
}

/// `$ref`: `actual` equals the value captured as `name`.
fn check_reference(
    m: &Matcher,
    name: &str,
    actual: &Value,
    path: &JsonPath,
    captures: &Captures,
) -> Option<Difference> {
    match captures.get(name) {
        Some(bound) if json_equal(bound, actual) => None,
        Some(bound) => Some(difference(
            path,
            format!(
                "expected the value captured as `{name}` ({}), received {}",
                short(bound),
                short(actual)
            ),
            bound.clone(),
            Some(actual),
        )),
        None => Some(difference(
            path,
            format!("`$ref` to `{name}`, which was not captured before"),
            m.describe(),
            Some(actual),
        )),
    }
}

/// `$capture`: binds `name` to `actual`, or checks it against the value bound before.
fn bind_capture(
    name: &str,
    actual: &Value,
    path: &JsonPath,
    captures: &mut Captures,
) -> Option<Difference> {
    match captures.get(name) {
        Some(bound) if !json_equal(bound, actual) => Some(difference(
            path,
            format!(
                "`{name}` was captured as {} before; received {}",
                short(bound),
                short(actual)
            ),
            bound.clone(),
            Some(actual),
        )),
        Some(_) => None,
        None => {
            captures.bind(name, actual.clone());
            None
        }
    }
}
