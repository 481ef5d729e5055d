//! The result types against the protocol: every example result of the seven methods in the
//! project's OpenRPC document must read into the generated type ops returns and serialize back
//! to exactly the same JSON.

use std::path::Path;

use crate::common::assert_matches_spec;
use flynn_protocol::types::{
    SystemDockerDependenciesResult, SystemDockerDependencyControlResult,
    SystemLocalBackendControlResult, SystemLocalBackendsResult, SystemObservabilitySeriesResult,
    SystemObservabilitySourcesResult, SystemServiceLogsResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn examples(method: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/flynn.openrpc.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let method = spec["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == method)
        .unwrap_or_else(|| panic!("{method} is not in the spec"));
    method["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"]["value"].clone())
        .collect()
}

fn round_trip<T: DeserializeOwned + Serialize>(method: &str) -> usize {
    let values = examples(method);
    assert!(!values.is_empty(), "{method} has no example");
    for value in &values {
        let typed: T = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{method} example does not read: {e}\n{value:#}"));
        assert_eq!(
            &serde_json::to_value(&typed).unwrap(),
            value,
            "{method} example changed in a round trip"
        );
    }
    values.len()
}

#[test]
fn every_example_result_round_trips() {
    let count = round_trip::<SystemLocalBackendsResult>("system.localBackends")
        + round_trip::<SystemLocalBackendControlResult>("system.localBackendControl")
        + round_trip::<SystemDockerDependenciesResult>("system.dockerDependencies")
        + round_trip::<SystemDockerDependencyControlResult>("system.dockerDependencyControl")
        + round_trip::<SystemObservabilitySourcesResult>("system.observabilitySources")
        + round_trip::<SystemObservabilitySeriesResult>("system.observabilitySeries")
        + round_trip::<SystemServiceLogsResult>("system.serviceLogs");
    assert!(count >= 7);
}

#[test]
#[should_panic(expected = "does not match the spec")]
fn the_spec_check_rejects_a_wrong_shape() {
    // `statusText` missing and `pid` negative: the helper used by the other tests must say so.
    assert_matches_spec(
        "SystemLocalBackendsResult",
        &json!({"backends": [{
            "id": "ollama", "provider": "ollama", "name": "Ollama", "unit": "ollama.service",
            "configured": true, "loadState": "loaded", "activeState": "active",
            "subState": "running", "pid": -1, "availableActions": []
        }]}),
    );
}
