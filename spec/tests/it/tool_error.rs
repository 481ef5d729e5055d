//! `ToolResult.error` (in `tool_end`) is a nullable string written as
//! `oneOf: [{type: string}, {type: null}]`, and `ToolsExecuteResult.error` an optional string:
//! the generated types read every form the protocol document and the gateway use (absent,
//! `null`, a string), and what they write validates against the spec's own schema.

use flynn_protocol::types::{ToolResult, ToolsExecuteResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn component(name: &str) -> Value {
    let spec: Value = serde_json::from_str(flynn_protocol::SPEC_JSON).expect("spec parses");
    spec["components"]["schemas"][name].clone()
}

/// Decodes each of the forms, checks the error it carries, re-encodes it and validates the
/// encoding against the component schema `name`.
fn check<T>(name: &str, error_of: fn(&T) -> Option<&str>)
where
    T: DeserializeOwned + Serialize,
{
    let schema = component(name);
    let validator = jsonschema::draft7::new(&schema)
        .unwrap_or_else(|e| panic!("{name} schema does not compile: {e}"));
    for (input, error, encoded) in [
        (
            json!({"success": true, "output": "Hello\n"}),
            None,
            json!({"success": true, "output": "Hello\n"}),
        ),
        (
            json!({"success": true, "output": "Hello\n", "error": null}),
            None,
            json!({"success": true, "output": "Hello\n"}),
        ),
        (
            json!({"success": false, "output": "", "error": "denied by policy"}),
            Some("denied by policy"),
            json!({"success": false, "output": "", "error": "denied by policy"}),
        ),
    ] {
        let value: T = serde_json::from_value(input.clone())
            .unwrap_or_else(|e| panic!("{name} does not decode {input}: {e}"));
        assert_eq!(error_of(&value), error, "{name} from {input}");
        let out = serde_json::to_value(&value).expect("encode");
        assert_eq!(out, encoded, "{name} encodes {input}");
        assert!(
            validator.is_valid(&out),
            "{name} encoding {out} does not validate against the spec"
        );
    }
}

#[test]
fn tool_result_reads_absent_null_and_text_and_leaves_out_no_error() {
    check::<ToolResult>("ToolResult", |r| r.error.as_deref());
    let schema = component("ToolResult");
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    // The protocol document's tool_end example carries `"error": null`.
    assert!(validator.is_valid(&json!({"success": true, "output": "Hello\n", "error": null})));
    assert!(!validator.is_valid(&json!({"success": true, "output": "", "error": 1})));
}

#[test]
fn tools_execute_result_reads_every_form_and_never_writes_null() {
    check::<ToolsExecuteResult>("ToolsExecuteResult", |r| r.error.as_deref());
    let schema = component("ToolsExecuteResult");
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    assert!(!validator.is_valid(&json!({"success": true, "output": "", "error": null})));
}
