//! Params: decoding by-name params into the generated types, then checking them against the
//! method's params schema (generated from the spec), naming the failing field.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::RpcError;
use crate::protocol::WireMethod;

/// Decodes by-name params of `method`; absent or `null` params decode as `{}`. The serde types
/// check names, types and required fields; the spec's JSON Schema then checks what the types
/// cannot carry (maximum, minLength, pattern, ...). A failure is -2 with `data.path` naming the
/// field.
pub fn decode_params<M: WireMethod, T: DeserializeOwned>(
    method: M,
    raw: Option<&RawValue>,
) -> Result<T, RpcError> {
    let text = match raw {
        Some(raw) if raw.get() != "null" => raw.get(),
        _ => {
            // No params: decode from an empty map without parsing text; a type with required
            // params fails here and gets its precise error from the text path below.
            let empty = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(
                std::iter::empty::<(&str, Value)>(),
            );
            if let Ok(decoded) = T::deserialize(empty) {
                return Ok(decoded);
            }
            "{}"
        }
    };
    let decoded = decode_typed(text)?;
    if text != "{}" {
        check_constraints(method, text)?;
    }
    Ok(decoded)
}

/// `/attachments/0/mimeType` -> `params.attachments[0].mimeType`.
fn params_path(pointer: &str) -> String {
    let mut path = String::from("params");
    for segment in pointer.split('/').skip(1) {
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    path
}

fn check_constraints<M: WireMethod>(method: M, text: &str) -> Result<(), RpcError> {
    let Some(validator) = M::params_validators().get(method) else {
        return Ok(());
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| RpcError::invalid("params", format!("invalid params: {e}")))?;
    // Valid params (nearly all of them) need no error collected: `is_valid` stops at the
    // first failure and builds nothing, and the failure is then worked out again.
    if validator.is_valid(&value) {
        return Ok(());
    }
    match validator.iter_errors(&value).next() {
        None => Ok(()),
        Some(error) => {
            let path = params_path(error.instance_path().as_str());
            Err(RpcError::invalid(
                path.clone(),
                format!("invalid params: {path}: {error}"),
            ))
        }
    }
}

fn decode_typed<T: DeserializeOwned>(text: &str) -> Result<T, RpcError> {
    // Params that decode need no path tracked: serde_path_to_error's bookkeeping of every
    // field cost as much as the decoding. Only a failure decodes again to name its field.
    let mut de = serde_json::Deserializer::from_str(text);
    if let Ok(decoded) = T::deserialize(&mut de) {
        return Ok(decoded);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner().to_string();
        let mut path = err.path().to_string();
        // Missing and unknown fields fail at the object that lacks or has them; name the field.
        // (serde_path_to_error already ends the path of an unknown field with its name.)
        let field = backticked(&inner);
        match (inner.starts_with("missing field"), field) {
            (true, Some(field)) if path != "." => path = format!("{path}.{field}"),
            (_, Some(field)) if path == "." => path = field,
            _ if path == "." => path = String::new(),
            _ => {}
        }
        let path = if path.is_empty() {
            "params".to_owned()
        } else {
            format!("params.{path}")
        };
        let message = format!("invalid params: {path}: {}", strip_position(&inner));
        RpcError::invalid(path, message)
    })
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMethod;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ListParams {
        limit: Option<i64>,
    }

    fn decode(text: Option<&str>) -> Result<ListParams, RpcError> {
        let raw = text.map(|t| serde_json::from_str::<&RawValue>(t).unwrap());
        decode_params(TestMethod::SessionsList, raw)
    }

    #[test]
    fn absent_and_null_params_decode_as_empty() {
        assert_eq!(decode(None), Ok(ListParams { limit: None }));
        assert_eq!(decode(Some("null")), Ok(ListParams { limit: None }));
        assert_eq!(
            decode(Some(r#"{"limit":5}"#)),
            Ok(ListParams { limit: Some(5) })
        );
    }

    #[test]
    fn the_schema_checks_what_the_type_cannot_and_names_the_field() {
        // The type takes any integer; the schema's `maximum` refuses 501 through the `$ref`.
        let error = decode(Some(r#"{"limit":501}"#)).unwrap_err();
        assert_eq!(error.code, crate::codes::INVALID_REQUEST);
        assert_eq!(
            error.data,
            Some(serde_json::json!({ "path": "params.limit" }))
        );
        let error = decode(Some(r#"{"limit":"x"}"#)).unwrap_err();
        assert_eq!(
            error.data,
            Some(serde_json::json!({ "path": "params.limit" }))
        );
        let error = decode(Some(r#"{"limits":1}"#)).unwrap_err();
        assert_eq!(
            error.data,
            Some(serde_json::json!({ "path": "params.limits" }))
        );
        assert_eq!(TestMethod::params_validators().failures(), &[] as &[String]);
    }

    #[test]
    fn pointers_become_params_paths() {
        assert_eq!(params_path(""), "params");
        assert_eq!(
            params_path("/attachments/0/mimeType"),
            "params.attachments[0].mimeType"
        );
        assert_eq!(params_path("/a~1b/c~0d"), "params.a/b.c~d");
    }
}
