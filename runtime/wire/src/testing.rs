//! A two-method protocol for this crate's unit tests (the real one is generated in
//! `flynn-protocol`, which builds on this crate).

use std::sync::OnceLock;

use crate::protocol::{ParamsValidators, WireMethod};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestMethod {
    SystemInfo,
    SessionsList,
}

impl WireMethod for TestMethod {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "system.info" => Some(Self::SystemInfo),
            "sessions.list" => Some(Self::SessionsList),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SystemInfo => "system.info",
            Self::SessionsList => "sessions.list",
        }
    }

    fn params_schema(self) -> &'static str {
        match self {
            Self::SystemInfo => {
                r#"{"type":"object","properties":{},"required":[],"additionalProperties":false}"#
            }
            Self::SessionsList => {
                r##"{"type":"object","properties":{"limit":{"$ref":"#/components/schemas/Limit"}},"required":[],"additionalProperties":false}"##
            }
        }
    }

    fn all() -> &'static [Self] {
        &[Self::SystemInfo, Self::SessionsList]
    }

    fn params_validators() -> &'static ParamsValidators {
        static VALIDATORS: OnceLock<ParamsValidators> = OnceLock::new();
        VALIDATORS.get_or_init(|| {
            ParamsValidators::compile::<Self>(&serde_json::json!({
                "schemas": { "Limit": { "type": "integer", "minimum": 1, "maximum": 500 } }
            }))
        })
    }
}
