//! The parts of a parsed spec (methods, params, events, errors, scopes, tags, the browser
//! subprotocol) and what a method derives from its params: apart from the reading and checking
//! in `spec.rs`, which builds them.

use serde_json::{Map, Value, json};

use crate::names;

/// The WebSocket subprotocol entries of `x-http.auth.browserSubprotocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSubprotocol {
    /// `protocol`: the subprotocol every client offers and the gateway selects (`flynn.v1`).
    pub protocol: String,
    /// `tokenPrefix`: the prefix of the entry that carries a token (`flynn.bearer.`).
    pub token_prefix: String,
}

/// One scope of the root `x-scopes` list.
#[derive(Debug, Clone)]
pub struct ScopeDef {
    pub name: String,
    pub description: String,
}

/// One method group of `components.tags`.
#[derive(Debug, Clone)]
pub struct TagDef {
    /// A lower-case word: it names the handler trait (`<Tag>Methods`) and the gateway module.
    pub name: String,
    pub description: String,
}

/// One method of the spec.
#[derive(Debug, Clone)]
pub struct Method {
    /// Wire name, e.g. `sessions.list`.
    pub name: String,
    pub summary: String,
    pub description: String,
    /// The method's group: the name of its one tag (`misc` when a pre-tags document has none).
    pub tag: String,
    /// `x-scope`: the scope a credential must hold to call the method.
    pub scope: String,
    pub params: Vec<Param>,
    /// Name of the result schema in `components.schemas`.
    pub result: String,
    /// Names of the errors (keys of `components.errors`) the method can return.
    pub errors: Vec<String>,
    /// Names of the events the method may emit.
    pub events: Vec<String>,
    /// True for methods that this project adds beyond the protocol document (`x-extension`).
    pub extension: bool,
    pub examples: Vec<Value>,
}

/// One by-name parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub schema: Value,
}

/// One server-pushed event type, declared in the root `x-events` extension.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub description: String,
    /// Name of the data schema in `components.schemas`.
    pub data: String,
    pub extension: bool,
    pub examples: Vec<Value>,
}

/// One named error code of `components.errors`.
#[derive(Debug, Clone)]
pub struct ErrorDef {
    pub name: String,
    pub code: i64,
    pub message: String,
    pub description: String,
    /// True for codes this project adds beyond the protocol document's table (`x-extension`
    /// in `x-errors`).
    pub extension: bool,
}

impl Method {
    /// Rust/TypeScript type name of the synthesized params object, e.g. `SessionsListParams`.
    pub fn params_type(&self) -> String {
        format!("{}Params", names::pascal(&self.name))
    }

    /// The JSON schema of the params object, built from the by-name params. Params are closed:
    /// an unknown field is an error naming that field, which catches `session` / `sessionId`
    /// style mistakes instead of silently ignoring them.
    pub fn params_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for param in &self.params {
            let mut schema = param.schema.clone();
            // Also next to a `$ref` (e.g. `SessionId`): the param's own words document the
            // field; typify keeps the referenced type and validators ignore the sibling.
            if let Some(obj) = schema.as_object_mut()
                && !param.description.is_empty()
            {
                obj.entry("description")
                    .or_insert_with(|| Value::String(param.description.clone()));
            }
            properties.insert(param.name.clone(), schema);
            if param.required {
                required.push(Value::String(param.name.clone()));
            }
        }
        json!({
            "type": "object",
            "description": format!("Params of `{}`.", self.name),
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// True when every param is optional, so the params may be omitted on the wire.
    pub fn params_optional(&self) -> bool {
        self.params.iter().all(|p| !p.required)
    }
}
