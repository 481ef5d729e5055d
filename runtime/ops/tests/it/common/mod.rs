//! Shared test helpers: the fake tools and fixtures of `flynn-test-support`, a config pointing at
//! the fakes, and a check of values against the spec's schemas.

use std::path::Path;

use flynn_ops::{LogBuffer, Ops, OpsConfig};
pub use flynn_test_support::{FakeTools, cat, cat_err, ops_fixture as fixture, show_args, strings};

/// Points an [`OpsConfig`] at a [`FakeTools`] dir.
pub trait OpsFakes {
    /// A config whose binaries are this dir's fakes (written or not).
    fn config(&self) -> OpsConfig;
}

impl OpsFakes for FakeTools {
    fn config(&self) -> OpsConfig {
        let mut config = OpsConfig::default();
        config.binaries.systemctl = self.path("systemctl");
        config.binaries.journalctl = self.path("journalctl");
        config.binaries.docker = self.path("docker");
        config.binaries.ollama = self.path("ollama");
        config.command_timeout_secs = 10;
        config
    }
}

/// Builds `Ops` with a fresh log buffer.
pub fn ops(config: OpsConfig) -> Ops {
    Ops::new(config, LogBuffer::new(100)).unwrap()
}

/// Validates `value` against a component schema of the project's OpenRPC document.
pub fn assert_matches_spec(component: &str, value: &serde_json::Value) {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/flynn.openrpc.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let schema = serde_json::json!({
        "$ref": format!("#/components/schemas/{component}"),
        "components": spec["components"],
    });
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{component} does not match the spec: {errors:?}\n{value:#}"
    );
}
