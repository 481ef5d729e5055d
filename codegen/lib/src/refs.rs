//! The `$ref` check of a spec document, apart from the rest of the parsing in [`crate::spec`].

use std::collections::BTreeMap;

use serde_json::Value;

/// The first `$ref` of the document that points at no existing schema (or error) of the
/// document, as (path, ref). `x-wire` and `x-http` hold validation-only schemas with their own
/// refs and are not checked.
pub fn unresolved_ref(raw: &Value, schemas: &BTreeMap<String, Value>) -> Option<(String, String)> {
    fn walk(
        v: &Value,
        path: &mut Vec<String>,
        schemas: &BTreeMap<String, Value>,
        raw: &Value,
    ) -> Option<(String, String)> {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    let ok = match r.strip_prefix("#/components/schemas/") {
                        Some(name) => schemas.contains_key(name),
                        None => r
                            .strip_prefix("#/components/errors/")
                            .is_some_and(|n| raw["components"]["errors"].get(n).is_some()),
                    };
                    let in_validation_only =
                        path.first().is_some_and(|p| p == "x-wire" || p == "x-http");
                    if !ok && !in_validation_only {
                        return Some((path.join("."), r.to_owned()));
                    }
                }
                for (k, child) in map {
                    path.push(k.clone());
                    let found = walk(child, path, schemas, raw);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    path.push(i.to_string());
                    let found = walk(child, path, schemas, raw);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
            }
            _ => {}
        }
        None
    }
    walk(raw, &mut Vec::new(), schemas, raw)
}
