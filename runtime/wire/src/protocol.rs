//! What the wire runtime needs from the generated protocol crate. `flynn-protocol` is generated
//! from the spec and builds on this crate, so the runtime cannot name its types; it reaches the
//! method table, the event enum and the error codes through these traits, which the generated
//! crate implements.
//!
//! The handful of codes and names the runtime sends on its own (a parse error, an invalid
//! request, ...) are constants here; `flynn-protocol` checks at compile time that each equals
//! the spec's value, so the spec stays the only truth.

use std::collections::HashMap;

use serde_json::Value;

/// The spec's methods, as the generated `Method` enum.
pub trait WireMethod: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The method called `name`, if the spec has one.
    fn from_name(name: &str) -> Option<Self>;

    /// The wire name.
    fn name(self) -> &'static str;

    /// The JSON Schema of the method's params object, as generated from the spec (the same
    /// schema the params type was generated from). The runtime checks params against it for
    /// what the serde types cannot carry (maximum, minLength, pattern, ...).
    fn params_schema(self) -> &'static str;

    /// Every method.
    fn all() -> &'static [Self];

    /// Every method's params schema, compiled once (a static of the implementing crate, built
    /// with [`ParamsValidators::compile`]).
    fn params_validators() -> &'static ParamsValidators;
}

/// Every method's params schema ([`WireMethod::params_schema`]), compiled once. The generated
/// crate keeps one in a static ([`WireMethod::params_validators`]).
#[derive(Debug)]
pub struct ParamsValidators {
    by_name: HashMap<&'static str, jsonschema::Validator>,
    failures: Vec<String>,
}

impl ParamsValidators {
    /// Compiles the params schema of every method of `M`; `components` is the spec's
    /// `components` object, where the schemas' `$ref`s point.
    pub fn compile<M: WireMethod>(components: &Value) -> Self {
        let mut by_name = HashMap::new();
        let mut failures = Vec::new();
        for &method in M::all() {
            let schema = serde_json::from_str::<Value>(method.params_schema())
                .map_err(|e| e.to_string())
                .and_then(|mut schema| {
                    // Refs (`#/components/schemas/...`) resolve against this root.
                    if let Some(object) = schema.as_object_mut() {
                        object.insert("components".to_owned(), components.clone());
                    }
                    jsonschema::draft7::new(&schema).map_err(|e| e.to_string())
                });
            match schema {
                Ok(validator) => {
                    by_name.insert(method.name(), validator);
                }
                Err(e) => failures.push(format!("{}: {e}", method.name())),
            }
        }
        Self { by_name, failures }
    }

    /// The compiled params schema of `method`; `None` only when it failed to compile (see
    /// [`Self::failures`]).
    pub fn get<M: WireMethod>(&self, method: M) -> Option<&jsonschema::Validator> {
        self.by_name.get(method.name())
    }

    /// The methods whose params schema did not compile, with the reason (a test holds this
    /// empty for the spec).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// The spec's events, as the generated `Event` enum: decodes a received event frame.
pub trait WireEvent: Sized {
    /// Decodes event `name` with its `data`.
    fn decode(name: &str, data: Value) -> Result<Self, serde_json::Error>;
}

/// The spec's error codes, as the generated `ErrorCode` enum.
pub trait WireCode: Copy {
    /// The integer sent on the wire.
    fn code(self) -> i64;

    /// The code for a wire integer, if the spec defines it.
    fn from_code(code: i64) -> Option<Self>;
}

/// The codes the runtime sends on its own. Each must equal the spec's code of that name
/// (`flynn-protocol` asserts it at compile time).
pub mod codes {
    /// ParseError: the frame is not valid JSON.
    pub const PARSE_ERROR: i64 = -1;
    /// InvalidRequest: the frame or its params are not a valid request.
    pub const INVALID_REQUEST: i64 = -2;
    /// MethodNotFound.
    pub const METHOD_NOT_FOUND: i64 = -3;
    /// ScopeRequired: the connection's credential lacks a scope or a session.
    pub const SCOPE_REQUIRED: i64 = -6;
    /// SessionNotFound.
    pub const SESSION_NOT_FOUND: i64 = 1;
    /// InternalError.
    pub const INTERNAL_ERROR: i64 = 5;
}

/// The `error` event, which the runtime sends when an event cannot be encoded. Must equal the
/// spec's event name (`flynn-protocol` asserts it at compile time).
pub const ERROR_EVENT: &str = "error";
