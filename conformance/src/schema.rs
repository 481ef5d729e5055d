//! What the spec's validators share: the error of a spec that does not compile, one violation
//! of it, and compiling and running a schema with the spec's `components` beside it. Its own
//! module so that the RPC side ([`crate::spec`]) and the HTTP side ([`crate::routes`]) both use it
//! without reaching into each other.

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

use crate::path::JsonPath;

/// Why the spec could not be turned into validators (a broken spec document).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the embedded spec is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the spec has no `{0}`; is spec/flynn.openrpc.json an OpenRPC document?")]
    Missing(String),
    #[error("the schema for {what} does not compile: {message}")]
    Schema { what: String, message: String },
}

/// One place where a frame breaks the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted from the frame root (`result.uptime`).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            "(frame)"
        } else {
            &self.path
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Compiles `schema` with the spec's `components` beside it, so `#/components/...` resolves.
pub(crate) fn compile_schema(
    what: &str,
    schema: Value,
    components: &Value,
) -> Result<Validator, SpecError> {
    let root = json!({
        "allOf": [schema],
        "components": components,
    });
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| SpecError::Schema {
            what: what.to_owned(),
            message: e.to_string(),
        })
}

pub(crate) fn run_validator(
    validator: &Validator,
    instance: &Value,
    at: &JsonPath,
) -> Vec<Violation> {
    validator
        .iter_errors(instance)
        .map(|e| Violation {
            path: at.join_pointer(e.instance_path().as_str()).to_string(),
            message: e.to_string(),
        })
        .collect()
}
