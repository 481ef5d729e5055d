//! Companion nodes over a real WebSocket against the in-process daemon and its SQLite store:
//! `node.register` (roles, protocol negotiation, feature gates), `node.capabilities.get`,
//! `node.location.set/get`, `node.status.set`, `node.push_token.set`, and the operator views
//! `system.capabilities`, `system.nodes`, `system.location`.
//!
//! Registration, capabilities, gates and the operator lists go through the generated typed
//! client. Raw on purpose: params the types cannot carry (protocolVersion 0, out-of-range
//! coordinates), the test that no reply ever carries the full push token (it reads the frames as
//! sent, where a typed decode would drop unknown members). A typed client's connection closes
//! when it is dropped.
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json (method descriptions and the x-decision
//! "gates-and-not-found": a closed gate or a node method before `node.register` is -2 with
//! `error.data.path` `method`) and the protocol document's Node Methods.

use std::num::NonZeroU64;

use crate::method_checks;
use crate::support;

use method_checks::{assert_invalid, call_ok, connection_id, now_ms, restart, stop, wait_past};

use flynn_protocol::types::{
    self, NodeCapabilities, NodeRef, NodeRegisterParams, NodeRegisterResult, NodeSnapshot,
    SystemNodesResult,
};
use flynn_protocol::wire::ClientError;
use serde_json::{Value, json};
use support::{TestClient, TestGateway, rpc_error};

/// Every node feature on, three protocol versions, two roles, one closed gate.
const ALL_ON: &str = r#"
[server.nodes]
enabled = true
allowed_roles = ["companion", "menubar"]
protocol_versions = [1, 2, 3]

[server.nodes.location]
enabled = true

[server.nodes.push]
enabled = true

[server.nodes.feature_gates]
"ui.canvas" = true
notifications = false
location = true
"#;

/// The full push token used by the tests; no reply may ever contain it.
const TOKEN: &str = "fcm_abcdefghijklmnopqrstuvwxyz123456";

fn reg(node_id: &str, role: &str, version: u64, capabilities: &[&str]) -> NodeRegisterParams {
    NodeRegisterParams {
        node_id: node_id.to_owned(),
        role: role.to_owned(),
        protocol_version: NonZeroU64::new(version).expect("a version above 0"),
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
    }
}

async fn register_typed(client: &TestClient, params: NodeRegisterParams) -> NodeRegisterResult {
    client
        .node_register(params.clone())
        .await
        .unwrap_or_else(|e| panic!("node.register {params:?}: {e}"))
}

async fn node_caps(client: &TestClient) -> types::NodeCapabilitiesGetResult {
    client
        .node_capabilities_get(types::NodeCapabilitiesGetParams {})
        .await
        .expect("node.capabilities.get")
}

async fn system_caps(client: &TestClient) -> types::SystemCapabilitiesResult {
    client
        .system_capabilities(types::SystemCapabilitiesParams {})
        .await
        .expect("system.capabilities")
}

async fn system_nodes(client: &TestClient) -> SystemNodesResult {
    client
        .system_nodes(types::SystemNodesParams {})
        .await
        .expect("system.nodes")
}

/// Calls `call` until `done` holds on its result (the server applies some changes, such as the
/// clean-up after a connection closes, asynchronously). Fails after 60 s (a liveness bound).
async fn typed_poll_until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    mut call: impl FnMut() -> F,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let result = call().await;
        if done(&result) {
            return result;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: condition not reached within 60 s; last result: {result:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn system_location(client: &TestClient) -> types::SystemLocationResult {
    client
        .system_location(types::SystemLocationParams {})
        .await
        .expect("system.location")
}

async fn my_connection_id(client: &TestClient) -> String {
    client
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info")
        .connection_id
        .expect("connectionId")
        .into()
}

fn at(latitude: f64, longitude: f64) -> types::NodeLocationSetParams {
    types::NodeLocationSetParams {
        latitude,
        longitude,
        accuracy_meters: None,
        captured_at: None,
        source: None,
    }
}

async fn set_location(
    client: &TestClient,
    params: types::NodeLocationSetParams,
) -> types::NodeLocationSetResult {
    client
        .node_location_set(params.clone())
        .await
        .unwrap_or_else(|e| panic!("node.location.set {params:?}: {e}"))
}

fn status(platform: &str) -> types::NodeStatusSetParams {
    types::NodeStatusSetParams {
        platform: platform.to_owned(),
        app_version: None,
        battery_pct: None,
        device_name: None,
        power_source: None,
        status_text: None,
    }
}

fn push_token(provider: types::PushProvider) -> types::NodePushTokenSetParams {
    types::NodePushTokenSetParams {
        provider,
        token: TOKEN.parse().expect("a valid push token"),
    }
}

/// The `system.nodes` entries of `node_id` (typed).
fn snapshots<'a>(nodes: &'a SystemNodesResult, node_id: &str) -> Vec<&'a NodeSnapshot> {
    nodes
        .nodes
        .iter()
        .filter(|n| n.node_id == node_id)
        .collect()
}

fn node_ref(id: &str, role: &str) -> NodeRef {
    NodeRef {
        id: id.to_owned(),
        role: role.to_owned(),
    }
}

fn capabilities(declared: &[&str], enabled: &[&str]) -> NodeCapabilities {
    let owned = |list: &[&str]| list.iter().map(|c| (*c).to_owned()).collect();
    NodeCapabilities {
        declared: owned(declared),
        enabled: owned(enabled),
    }
}

/// A typed call's error reply as the frame carries it, for `assert_invalid` / `assert_code`.
fn error_reply<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Value {
    json!({ "error": rpc_error(result) })
}

/// The JSON form of a typed value (for comparisons with the spec's examples).
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a typed value serializes")
}

/// The `system.nodes` entries of `node_id`.
fn entries<'a>(nodes: &'a Value, node_id: &str) -> Vec<&'a Value> {
    nodes["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("system.nodes has `nodes`: {nodes}"))
        .iter()
        .filter(|n| n["nodeId"] == json!(node_id))
        .collect()
}

#[tokio::test]
async fn register_checks_the_role_negotiates_and_filters_capabilities_by_gate() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;

    let before = node_caps(&client).await;
    assert_eq!(
        before,
        types::NodeCapabilitiesGetResult {
            registered: false,
            capabilities: capabilities(&[], &[]),
            node: None,
            protocol: None,
        },
        "an unregistered connection gets registered false, no node or protocol"
    );
    let caps = system_caps(&client).await;
    assert_eq!(caps.protocol.version.get(), 1, "{caps:?}");
    assert_eq!(
        to_json(&caps.nodes),
        json!({"enabled": true, "locationEnabled": true, "pushEnabled": true,
               "allowedRoles": ["companion", "menubar"], "registered": false}),
        "{caps:?}"
    );
    assert_eq!(
        to_json(&caps.feature_gates),
        json!({"ui.canvas": true, "notifications": false, "location": true})
    );

    let reply = error_reply(client.node_register(reg("desk", "admin", 1, &[])).await);
    assert_invalid(&reply, "params.role", "a role outside allowed_roles");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("companion") && message.contains("menubar"),
        "the error lists the allowed roles: {message}"
    );
    // protocolVersion 0 is not a typed value (NonZeroU64): raw on the same connection.
    let reply = client
        .raw(
            "node.register",
            json!({"nodeId": "desk", "role": "companion", "protocolVersion": 0}),
        )
        .await;
    assert_invalid(&reply, "params.protocolVersion", "protocolVersion 0");
    let still = node_caps(&client).await;
    assert!(!still.registered, "failed registrations leave no trace");

    // Server speaks 1..3, the node up to 2: 2 is the highest common version.
    let registered = register_typed(
        &client,
        reg(
            "desk",
            "companion",
            2,
            &["ui.canvas", "notifications", "camera"],
        ),
    )
    .await;
    assert!(registered.registered);
    assert_eq!(registered.node, node_ref("desk", "companion"));
    assert_eq!(
        to_json(&registered.protocol),
        json!({"serverVersion": 3, "clientVersion": 2, "negotiatedVersion": 2})
    );
    let mut declared = registered.capabilities.declared.clone();
    declared.sort();
    assert_eq!(
        declared,
        ["camera", "notifications", "ui.canvas"],
        "every declared capability is kept, unknown ones included"
    );
    assert_eq!(
        registered.capabilities.enabled,
        ["ui.canvas"],
        "only capabilities whose gate is open are enabled (notifications is closed, camera unknown)"
    );

    let after = node_caps(&client).await;
    assert!(after.registered);
    assert_eq!(after.node.as_ref(), Some(&registered.node));
    assert_eq!(after.protocol.as_ref(), Some(&registered.protocol));
    let mut after_declared = after.capabilities.declared.clone();
    after_declared.sort();
    assert_eq!(after_declared, declared);
    assert_eq!(after.capabilities.enabled, ["ui.canvas"]);
    let caps = system_caps(&client).await;
    assert!(caps.nodes.registered, "{caps:?}");
    assert_eq!(caps.nodes.node_id.as_deref(), Some("desk"));
    assert_eq!(caps.nodes.role.as_deref(), Some("companion"));

    // Registering again replaces the registration; a newer client gets the server's highest.
    let again = register_typed(&client, reg("desk", "menubar", 7, &[])).await;
    assert_eq!(
        to_json(&again.protocol),
        json!({"serverVersion": 3, "clientVersion": 7, "negotiatedVersion": 3})
    );
    let now = node_caps(&client).await;
    assert_eq!(now.node, Some(node_ref("desk", "menubar")));
    assert_eq!(now.capabilities, capabilities(&[], &[]));
    gw.stop().await;
}

/// The protocol document's node.register reply echoes `capabilities` in the client's order
/// (`["ui.canvas", "notifications"]`, not sorted). A repeated capability is listed once, where it
/// first appeared; `enabled` follows the same order. node.capabilities.get and system.nodes
/// report the registration the same way.
#[tokio::test]
async fn register_keeps_the_clients_capability_order() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    let registered = register_typed(
        &client,
        reg(
            "desk",
            "companion",
            1,
            &[
                "ui.canvas",
                "notifications",
                "camera",
                "location",
                "notifications",
            ],
        ),
    )
    .await;
    let want = capabilities(
        &["ui.canvas", "notifications", "camera", "location"],
        &["ui.canvas", "location"],
    );
    assert_eq!(
        registered.capabilities, want,
        "declared in the client's order, duplicates once: {registered:?}"
    );
    let got = node_caps(&client).await;
    assert_eq!(got.capabilities, want, "node.capabilities.get: {got:?}");
    let nodes = system_nodes(&client).await;
    assert_eq!(
        snapshots(&nodes, "desk")[0].capabilities,
        want,
        "system.nodes: {nodes:?}"
    );

    // The document's own example, verbatim.
    let example = register_typed(
        &client,
        reg(
            "companion-desktop",
            "companion",
            1,
            &["ui.canvas", "notifications"],
        ),
    )
    .await;
    assert_eq!(
        example.capabilities.declared,
        ["ui.canvas", "notifications"],
        "{example:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn no_common_protocol_version_is_invalid_request_on_protocol_version() {
    let gw =
        TestGateway::start("[server.nodes]\nenabled = true\nprotocol_versions = [2, 3]\n").await;
    let client = gw.typed_client().await;
    let reply = error_reply(
        client
            .node_register(reg("old-phone", "companion", 1, &[]))
            .await,
    );
    assert_invalid(&reply, "params.protocolVersion", "no common version");
    let caps = node_caps(&client).await;
    assert!(!caps.registered);
    let ok_reply = register_typed(&client, reg("old-phone", "companion", 2, &[])).await;
    assert_eq!(ok_reply.protocol.negotiated_version.get(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn closed_node_gate_refuses_register_on_method_naming_the_config_key() {
    let gw = TestGateway::start("[server.nodes]\nenabled = false\n").await;
    let client = gw.typed_client().await;
    let reply = error_reply(client.node_register(reg("desk", "companion", 1, &[])).await);
    assert_invalid(&reply, "method", "node.register with node support disabled");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.nodes.enabled"),
        "the message names the switch: {reply}"
    );
    // system.capabilities works without node support; the operator views are empty.
    let caps = system_caps(&client).await;
    assert!(!caps.nodes.enabled, "{caps:?}");
    assert!(!caps.nodes.registered, "{caps:?}");
    assert_eq!(
        system_nodes(&client).await,
        SystemNodesResult { nodes: vec![] }
    );
    assert_eq!(
        client
            .system_location(types::SystemLocationParams {})
            .await
            .expect("system.location"),
        types::SystemLocationResult { locations: vec![] }
    );
    // Spec: "error.data.expected naming the config key".
    assert!(
        reply["error"]["data"]["expected"]
            .as_str()
            .is_some_and(|e| e.contains("server.nodes.enabled")),
        "error.data.expected names the config key (spec node.register): {reply}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn closed_node_gate_refuses_capabilities_get_on_method() {
    let gw = TestGateway::start("[server.nodes]\nenabled = false\n").await;
    let client = gw.typed_client().await;
    let reply = error_reply(
        client
            .node_capabilities_get(types::NodeCapabilitiesGetParams {})
            .await,
    );
    assert_invalid(
        &reply,
        "method",
        "node.capabilities.get with node support disabled (spec: requires server.nodes.enabled)",
    );
    gw.stop().await;
}

#[tokio::test]
async fn node_methods_before_register_are_invalid_request_on_method() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    let replies = [
        (
            "node.location.set",
            error_reply(client.node_location_set(at(1.0, 2.0)).await),
        ),
        (
            "node.location.get",
            error_reply(
                client
                    .node_location_get(types::NodeLocationGetParams {})
                    .await,
            ),
        ),
        (
            "node.status.set",
            error_reply(client.node_status_set(status("macos")).await),
        ),
        (
            "node.push_token.set",
            error_reply(
                client
                    .node_push_token_set(push_token(types::PushProvider::Fcm))
                    .await,
            ),
        ),
    ];
    for (method, reply) in replies {
        assert_invalid(&reply, "method", &format!("{method} before node.register"));
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("node.register"),
            "{method}: the message says to register first: {reply}"
        );
    }
    gw.stop().await;
}

mod node_state;
