//! Violations an expected frame's matchers excuse: `validate` holds an expected frame (matchers
//! replaced by their `$example`s) to its schema, and whatever breaks the schema inside a hole
//! (a place a matcher stands for) says nothing about the transcript. Shared by the RPC
//! ([`crate::validate`]) and HTTP ([`crate::validate_http`]) checks.

use crate::schema::Violation;

/// `violations` without those at or under one of `holes` (dotted paths).
pub(crate) fn outside_holes(violations: Vec<Violation>, holes: &[String]) -> Vec<Violation> {
    violations
        .into_iter()
        .filter(|v| {
            !holes.iter().any(|h| {
                is_under(&v.path, h)
                    // A hole may stand for a required member: the schema then reports its parent.
                    || (v.message.contains("is a required property") && is_under(h, &v.path))
            })
        })
        .collect()
}

/// Whether `path` is `base` or below it.
fn is_under(path: &str, base: &str) -> bool {
    path == base
        || base.is_empty()
        || (path.starts_with(base)
            && matches!(path.as_bytes().get(base.len()), Some(b'.') | Some(b'[')))
}
