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
/// clean-up after a connection closes, asynchronously). Fails after 10 s.
async fn typed_poll_until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    mut call: impl FnMut() -> F,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let result = call().await;
        if done(&result) {
            return result;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: condition not reached within 10 s; last result: {result:?}"
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

#[tokio::test]
async fn location_and_push_switches_gate_their_methods() {
    let gw = TestGateway::start(
        "[server.nodes]\nenabled = true\n[server.nodes.location]\nenabled = false\n[server.nodes.push]\nenabled = false\n",
    )
    .await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("phone", "companion", 3, &[])).await;
    let caps = system_caps(&client).await;
    assert!(!caps.nodes.location_enabled, "{caps:?}");
    assert!(!caps.nodes.push_enabled, "{caps:?}");

    let reply = error_reply(client.node_location_set(at(1.0, 2.0)).await);
    assert_invalid(&reply, "method", "node.location.set with locations off");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.nodes.location.enabled"),
        "{reply}"
    );
    let reply = error_reply(
        client
            .node_push_token_set(push_token(types::PushProvider::Fcm))
            .await,
    );
    assert_invalid(&reply, "method", "node.push_token.set with push off");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.nodes.push.enabled"),
        "{reply}"
    );
    // node.status.set has no switch of its own.
    let updated = client
        .node_status_set(status("linux"))
        .await
        .expect("node.status.set");
    assert!(updated.updated);

    // Spec node.location.get: "Requires server.nodes.enabled and server.nodes.location.enabled;
    // a closed gate is InvalidRequest on `method`."
    let reply = error_reply(
        client
            .node_location_get(types::NodeLocationGetParams {})
            .await,
    );
    assert_invalid(&reply, "method", "node.location.get with locations off");
    gw.stop().await;
}

#[tokio::test]
async fn location_status_and_push_token_are_stored_and_tokens_only_shown_masked() {
    let gw = TestGateway::start(ALL_ON).await;
    let mut node = gw.client().await;
    let mut operator = gw.client().await;
    let mut frames: Vec<String> = Vec::new();
    let node_conn = connection_id(&mut node).await;
    let registered = call_ok(
        &mut node,
        "node.register",
        json!({"nodeId": "companion-phone", "role": "companion", "protocolVersion": 1,
               "capabilities": ["ui.canvas", "location"]}),
    )
    .await;
    frames.push(registered.to_string());

    // No location yet: `location` is absent.
    let empty = call_ok(&mut node, "node.location.get", json!({})).await;
    assert_eq!(
        empty,
        json!({"node": {"id": "companion-phone", "role": "companion"}})
    );

    // Out-of-range values name their param.
    for (params, path) in [
        (
            json!({"latitude": 91.0, "longitude": 0.0}),
            "params.latitude",
        ),
        (
            json!({"latitude": 0.0, "longitude": -180.5}),
            "params.longitude",
        ),
        (json!({"longitude": 0.0}), "params.latitude"),
    ] {
        let reply = node.call("node.location.set", params.clone()).await;
        assert_invalid(&reply, path, &format!("node.location.set {params}"));
    }

    let t0 = now_ms();
    let set = call_ok(
        &mut node,
        "node.location.set",
        json!({"latitude": 37.7749, "longitude": -122.4194, "accuracyMeters": 12.4,
               "source": "gps", "capturedAt": 1_763_241_200_000_u64}),
    )
    .await;
    let t1 = now_ms();
    assert_eq!(set["updated"], json!(true));
    assert_eq!(
        set["node"],
        json!({"id": "companion-phone", "role": "companion"})
    );
    let location = set["location"].clone();
    let received = location["receivedAt"].as_u64().expect("receivedAt ms");
    assert!(
        (t0..=t1).contains(&received),
        "receivedAt {received} is the receive time in epoch ms ({t0}..{t1})"
    );
    assert_eq!(
        location,
        json!({"latitude": 37.7749, "longitude": -122.4194, "accuracyMeters": 12.4,
               "source": "gps", "capturedAt": 1_763_241_200_000_u64, "receivedAt": received})
    );
    let got = call_ok(&mut node, "node.location.get", json!({})).await;
    assert_eq!(got["location"], location);

    // capturedAt defaults to the receive time.
    let second = call_ok(
        &mut node,
        "node.location.set",
        json!({"latitude": -33.8688, "longitude": 151.2093}),
    )
    .await;
    assert_eq!(
        second["location"]["capturedAt"],
        second["location"]["receivedAt"]
    );
    let location = second["location"].clone();
    assert!(location.get("accuracyMeters").is_none(), "{location}");

    // Status: the reply echoes it with receivedAt; a later report replaces the whole status.
    let reply = node
        .call(
            "node.status.set",
            json!({"platform": "ios", "batteryPct": 100.5}),
        )
        .await;
    assert_invalid(&reply, "params.batteryPct", "batteryPct above 100");
    let status = call_ok(
        &mut node,
        "node.status.set",
        json!({"platform": "macos", "appVersion": "0.3.1", "deviceName": "MacBook Pro",
               "statusText": "Idle", "batteryPct": 64, "powerSource": "battery"}),
    )
    .await;
    assert_eq!(status["updated"], json!(true));
    assert_eq!(status["status"]["deviceName"], json!("MacBook Pro"));
    assert_eq!(status["status"]["batteryPct"], json!(64.0));
    let status = call_ok(
        &mut node,
        "node.status.set",
        json!({"platform": "macos", "statusText": "Busy"}),
    )
    .await;
    let status = status["status"].clone();
    assert!(status["receivedAt"].as_u64().is_some(), "{status}");
    assert!(
        status.get("batteryPct").is_none() && status.get("deviceName").is_none(),
        "omitted optional fields are cleared: {status}"
    );

    // Push token: stored, answered and listed only as a preview.
    let reply = node
        .call(
            "node.push_token.set",
            json!({"provider": "fcm", "token": "short"}),
        )
        .await;
    assert_invalid(&reply, "params.token", "a token under 8 characters");
    let reply = node
        .call(
            "node.push_token.set",
            json!({"provider": "gcm", "token": TOKEN}),
        )
        .await;
    assert_invalid(&reply, "params.provider", "an unknown push provider");
    let push = call_ok(
        &mut node,
        "node.push_token.set",
        json!({"provider": "fcm", "token": TOKEN}),
    )
    .await;
    frames.push(push.to_string());
    assert_eq!(push["updated"], json!(true));
    assert_eq!(push["provider"], json!("fcm"));
    let preview = push["tokenPreview"]
        .as_str()
        .expect("tokenPreview")
        .to_owned();
    assert!(
        preview.starts_with("fcm_") && preview.ends_with("3456") && preview.len() < 16,
        "the preview shows the first and last 4 characters only: {preview}"
    );

    let nodes = call_ok(&mut operator, "system.nodes", json!({})).await;
    frames.push(nodes.to_string());
    let listed = entries(&nodes, "companion-phone");
    assert_eq!(listed.len(), 1, "{nodes}");
    let snapshot = listed[0];
    assert_eq!(snapshot["role"], json!("companion"));
    assert_eq!(snapshot["connectionId"], json!(node_conn));
    assert_eq!(snapshot["connected"], json!(true));
    assert_eq!(snapshot["protocolVersion"], json!(1));
    assert_eq!(
        snapshot["capabilities"],
        json!({"declared": ["ui.canvas", "location"], "enabled": ["ui.canvas", "location"]}),
        "in the order the node declared them"
    );
    assert!(
        snapshot["registeredAt"]
            .as_u64()
            .is_some_and(|t| t <= now_ms())
    );
    assert_eq!(snapshot["location"], location);
    assert_eq!(snapshot["status"], status);
    assert_eq!(snapshot["pushToken"]["provider"], json!("fcm"));
    assert_eq!(snapshot["pushToken"]["tokenPreview"], json!(preview));
    assert!(snapshot["pushToken"]["updatedAt"].as_u64().is_some());

    let located = call_ok(&mut operator, "system.location", json!({})).await;
    frames.push(located.to_string());
    assert_eq!(
        located,
        json!({"locations": [{"nodeId": "companion-phone", "role": "companion",
                              "connected": true, "location": location}]})
    );
    frames.push(
        call_ok(&mut node, "node.capabilities.get", json!({}))
            .await
            .to_string(),
    );
    frames.push(
        call_ok(&mut operator, "system.capabilities", json!({}))
            .await
            .to_string(),
    );

    for frame in &frames {
        assert!(
            !frame.contains(TOKEN) && !frame.contains("abcdefghijklmnop"),
            "the full push token must never be returned: {frame}"
        );
    }
    stop(gw, [node, operator]).await;
}

#[tokio::test]
async fn push_token_preview_is_first_four_and_last_four_around_three_dots() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("companion-phone", "companion", 3, &[])).await;
    let push = client
        .node_push_token_set(types::NodePushTokenSetParams {
            provider: types::PushProvider::Fcm,
            token: TOKEN.parse().expect("a valid push token"),
        })
        .await
        .expect("node.push_token.set");
    // Spec PushTokenPreview.tokenPreview: "its first 4 and last 4 characters around `...`";
    // the spec's example shows "fcm_...3456".
    assert_eq!(push.token_preview, "fcm_...3456", "{push:?}");
    gw.stop().await;
}

#[tokio::test]
async fn registration_belongs_to_its_connection_and_ends_when_it_closes() {
    let gw = TestGateway::start(ALL_ON).await;
    let node = gw.typed_client().await;
    let operator = gw.typed_client().await;
    let node_conn = my_connection_id(&node).await;
    register_typed(&node, reg("phone-1", "companion", 3, &[])).await;

    let nodes = system_nodes(&operator).await;
    let listed = snapshots(&nodes, "phone-1");
    assert_eq!(listed.len(), 1, "{nodes:?}");
    assert_eq!(listed[0].connection_id, node_conn);
    assert!(listed[0].connected);
    // The operator connection is not a node.
    let caps = node_caps(&operator).await;
    assert!(!caps.registered);

    // Dropping the typed client closes its connection.
    drop(node);
    let nodes = typed_poll_until(
        "phone-1 no longer connected after its connection closed",
        || system_nodes(&operator),
        |r| snapshots(r, "phone-1").iter().all(|n| !n.connected),
    )
    .await;

    // The id is free again: another connection registers it and is the live node.
    let again = gw.typed_client().await;
    let again_conn = my_connection_id(&again).await;
    register_typed(&again, reg("phone-1", "companion", 3, &[])).await;
    let live = system_nodes(&operator).await;
    let connected: Vec<&NodeSnapshot> = snapshots(&live, "phone-1")
        .into_iter()
        .filter(|n| n.connected)
        .collect();
    assert_eq!(connected.len(), 1, "{live:?}");
    assert_eq!(connected[0].connection_id, again_conn);

    // Spec system.nodes: "Lists every node registered since the gateway started (disconnected
    // ones included, with `connected: false`)".
    let gone = snapshots(&nodes, "phone-1");
    assert_eq!(
        gone.len(),
        1,
        "after the close, system.nodes still lists phone-1 with connected false: {nodes:?}"
    );
    assert!(!gone[0].connected, "{nodes:?}");
    assert_eq!(gone[0].connection_id, node_conn, "{nodes:?}");
    gw.stop().await;
}

#[tokio::test]
async fn a_node_id_registered_on_another_connection_is_taken_over() {
    let gw = TestGateway::start(ALL_ON).await;
    let first = gw.typed_client().await;
    let second = gw.typed_client().await;
    register_typed(&first, reg("desk", "companion", 3, &[])).await;
    let second_conn = second
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info")
        .connection_id
        .expect("connectionId");
    register_typed(&second, reg("desk", "companion", 3, &[])).await;

    // Spec node.register: "an id already held by another open connection is taken over (the
    // older connection stays open but is no longer a node)".
    let nodes = system_nodes(&second).await;
    let live: Vec<&NodeSnapshot> = snapshots(&nodes, "desk")
        .into_iter()
        .filter(|n| n.connected)
        .collect();
    assert_eq!(live.len(), 1, "one live registration of `desk`: {nodes:?}");
    assert_eq!(live[0].connection_id, second_conn, "{nodes:?}");
    let old = node_caps(&first).await;
    assert!(
        !old.registered,
        "the older connection is no longer a node: {old:?}"
    );
    let info = first
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info on the older connection");
    assert!(!info.version.is_empty(), "the older connection stays open");
    gw.stop().await;
}

#[tokio::test]
async fn last_known_location_and_status_survive_a_restart() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("laptop", "companion", 3, &[])).await;
    let location = set_location(
        &client,
        types::NodeLocationSetParams {
            accuracy_meters: Some(30.0),
            source: Some("wifi".into()),
            ..at(48.8566, 2.3522)
        },
    )
    .await
    .location;
    let stored_status = client
        .node_status_set(types::NodeStatusSetParams {
            status_text: Some("Compiling".into()),
            power_source: Some("ac".into()),
            ..status("linux")
        })
        .await
        .expect("node.status.set")
        .status;
    drop(client);

    let gw = restart(gw, ALL_ON).await;
    let client = gw.typed_client().await;
    // Before re-registering, the stored location is visible to operators.
    let located = system_location(&client).await;
    assert_eq!(
        located,
        types::SystemLocationResult {
            locations: vec![types::NodeLocationEntry {
                node_id: "laptop".into(),
                role: "companion".into(),
                connected: false,
                location: location.clone(),
            }]
        },
        "the stored location of a node that is not connected"
    );
    register_typed(&client, reg("laptop", "companion", 3, &[])).await;
    let got = client
        .node_location_get(types::NodeLocationGetParams {})
        .await
        .expect("node.location.get");
    assert_eq!(
        got.location.as_ref(),
        Some(&location),
        "the location stored before the restart"
    );
    let nodes = system_nodes(&client).await;
    let listed = snapshots(&nodes, "laptop");
    assert_eq!(listed.len(), 1, "{nodes:?}");
    assert_eq!(listed[0].status.as_ref(), Some(&stored_status), "{nodes:?}");
    assert_eq!(listed[0].location.as_ref(), Some(&location), "{nodes:?}");
    gw.stop().await;
}

#[tokio::test]
async fn system_location_keeps_disconnected_nodes_and_lists_the_latest_first() {
    let gw = TestGateway::start(ALL_ON).await;
    let a = gw.typed_client().await;
    let b = gw.typed_client().await;
    let operator = gw.typed_client().await;
    register_typed(&a, reg("a-node", "companion", 3, &[])).await;
    let first = set_location(&a, at(1.0, 1.0)).await;
    wait_past(first.location.received_at).await;
    register_typed(&b, reg("b-node", "companion", 3, &[])).await;
    set_location(&b, at(2.0, 2.0)).await;
    drop(a);

    let located = typed_poll_until(
        "a-node reported as disconnected",
        || system_location(&operator),
        |r| {
            r.locations
                .iter()
                .any(|e| e.node_id == "a-node" && !e.connected)
        },
    )
    .await;
    let by_id = |id: &str| -> &types::NodeLocationEntry {
        located
            .locations
            .iter()
            .find(|e| e.node_id == id)
            .unwrap_or_else(|| panic!("{id} listed: {located:?}"))
    };
    assert_eq!(by_id("a-node").location.latitude, 1.0);
    assert!(by_id("b-node").connected);

    // Spec system.location: "most recently received first".
    let order: Vec<&str> = located
        .locations
        .iter()
        .map(|e| e.node_id.as_str())
        .collect();
    assert_eq!(
        order,
        ["b-node", "a-node"],
        "most recently received first: {located:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn system_nodes_lists_the_newest_registration_first() {
    let gw = TestGateway::start(ALL_ON).await;
    let a = gw.typed_client().await;
    let z = gw.typed_client().await;
    register_typed(&a, reg("a-node", "companion", 3, &[])).await;
    let nodes = system_nodes(&a).await;
    let registered_at = snapshots(&nodes, "a-node")[0].registered_at;
    wait_past(registered_at).await;
    register_typed(&z, reg("z-node", "companion", 3, &[])).await;
    let nodes = system_nodes(&a).await;
    let order: Vec<&str> = nodes.nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(
        order,
        ["z-node", "a-node"],
        "spec system.nodes: newest registration first: {nodes:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn system_location_is_empty_when_location_support_is_disabled() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("phone", "companion", 3, &[])).await;
    set_location(&client, at(10.0, 20.0)).await;
    drop(client);
    let gw = restart(gw, "[server.nodes.location]\nenabled = false\n").await;
    let client = gw.typed_client().await;
    let located = system_location(&client).await;
    // Spec system.location: "Returns an empty list when node or location support is disabled."
    assert_eq!(
        located,
        types::SystemLocationResult { locations: vec![] },
        "{located:?}"
    );
    gw.stop().await;
}
