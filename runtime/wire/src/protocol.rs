//! What the wire runtime needs from the generated protocol crate. `flynn-protocol` is generated
//! from the spec and builds on this crate, so the runtime cannot name its types; it reaches the
//! method table, the event enum and the error codes through these traits, which the generated
//! crate implements.
//!
//! The handful of codes and names the runtime sends on its own (a parse error, an invalid
//! request, ...) are constants here; `flynn-protocol` checks at compile time that each equals
//! the spec's value, so the spec stays the only truth.

use serde_json::Value;

use crate::params::ParamsValidators;

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
