//! The generated `Method`, `Event` and `ErrorCode` as `flynn-wire`'s protocol traits, and the
//! compile-time check that the codes and names the runtime sends on its own are the spec's.

use std::sync::OnceLock;

use flynn_wire::protocol::{ERROR_EVENT, codes};
use flynn_wire::{ParamsValidators, WireCode, WireEvent, WireMethod};
use serde_json::Value;

use crate::{ErrorCode, Event, Method};

impl WireMethod for Method {
    fn from_name(name: &str) -> Option<Self> {
        Method::from_name(name)
    }

    fn name(self) -> &'static str {
        Method::name(self)
    }

    fn params_schema(self) -> &'static str {
        Method::params_schema(self)
    }

    fn all() -> &'static [Self] {
        &Method::ALL
    }

    fn params_validators() -> &'static ParamsValidators {
        static VALIDATORS: OnceLock<ParamsValidators> = OnceLock::new();
        VALIDATORS.get_or_init(|| {
            // The params schemas' `$ref`s point into the spec's `components`.
            let components = serde_json::from_str::<Value>(crate::SPEC_JSON)
                .map(|mut spec| spec["components"].take())
                .unwrap_or(Value::Null);
            ParamsValidators::compile::<Method>(&components)
        })
    }
}

impl WireEvent for Event {
    fn decode(name: &str, data: Value) -> Result<Self, serde_json::Error> {
        Event::decode(name, data)
    }
}

impl WireCode for ErrorCode {
    fn code(self) -> i64 {
        ErrorCode::code(self)
    }

    fn from_code(code: i64) -> Option<Self> {
        ErrorCode::from_code(code)
    }
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The runtime's own codes and event name are the spec's: a spec change that renumbers one fails
// the build here rather than putting a stale code on the wire.
const _: () = {
    assert!(codes::PARSE_ERROR == ErrorCode::ParseError.code());
    assert!(codes::INVALID_REQUEST == ErrorCode::InvalidRequest.code());
    assert!(codes::METHOD_NOT_FOUND == ErrorCode::MethodNotFound.code());
    assert!(codes::SCOPE_REQUIRED == ErrorCode::ScopeRequired.code());
    assert!(codes::SESSION_NOT_FOUND == ErrorCode::SessionNotFound.code());
    assert!(codes::INTERNAL_ERROR == ErrorCode::InternalError.code());
    assert!(same_str(ERROR_EVENT, crate::events::ERROR));
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_params_schema_compiles() {
        assert_eq!(Method::params_validators().failures(), &[] as &[String]);
        for method in Method::ALL {
            assert!(
                Method::params_validators().get(method).is_some(),
                "{method:?}"
            );
        }
    }

    /// The string enums' `JsonSchema` (feature `schemars`) is the spec's schema, not the
    /// `true` schema a failed read would give.
    #[cfg(feature = "schemars")]
    #[test]
    fn string_enums_carry_the_specs_schema() {
        use schemars::JsonSchema;
        let spec: Value = serde_json::from_str(crate::SPEC_JSON).unwrap();
        let schemas = &spec["components"]["schemas"];
        let mut generator = schemars::SchemaGenerator::default();
        let read = [
            (
                "QueueMode",
                crate::types::QueueMode::json_schema(&mut generator),
            ),
            (
                "QueueOverflow",
                crate::types::QueueOverflow::json_schema(&mut generator),
            ),
            (
                "ControlAction",
                crate::types::ControlAction::json_schema(&mut generator),
            ),
            ("Scope", crate::types::Scope::json_schema(&mut generator)),
        ];
        for (name, schema) in read {
            assert_eq!(schema.as_value(), &schemas[name], "{name}");
            assert!(schema.as_value()["enum"].is_array(), "{name}");
        }
    }
}
