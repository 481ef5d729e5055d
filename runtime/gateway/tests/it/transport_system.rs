//! The system methods of issue 3 over a real WebSocket: `system.info`, `system.disconnect`
//! (reply, then close 1000), `system.capabilities` (limits from config) and `rpc.discover`
//! (the spec document itself).

use crate::support;

use serde_json::{Value, json};
use support::TestGateway;

#[tokio::test]
async fn system_info_reports_version_uptime_connections_and_identity() {
    let gw = TestGateway::start("").await;
    let mut a = gw.client().await;
    let info = a.call("system.info", json!({})).await;
    let r = &info["result"];
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert!(r["uptime"].is_u64(), "uptime in whole seconds: {info}");
    assert_eq!(r["connections"], 1, "{info}");
    let connection_id = r["connectionId"].as_str().expect("connectionId").to_owned();
    assert!(!connection_id.is_empty());
    assert_eq!(
        r["sessionId"],
        format!("ws:{connection_id}"),
        "the default session is ws:<connectionId>"
    );

    let mut b = gw.client().await;
    let info_b = b.call("system.info", json!({})).await;
    assert_eq!(info_b["result"]["connections"], 2, "{info_b}");
    assert_ne!(info_b["result"]["connectionId"], json!(connection_id));

    drop(b);
    // The count goes back down once the server has seen the close.
    // A liveness bound: a gateway that never notices the close keeps the count forever.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let info = a.call("system.info", json!({})).await;
        if info["result"]["connections"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed connection still counted: {info}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn system_disconnect_replies_then_closes_with_1000() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = ws.call("system.disconnect", json!({})).await;
    assert_eq!(reply["result"], json!({ "success": true }), "{reply}");
    assert_eq!(ws.close_code().await, Some(1000));
    // The gateway goes on serving others.
    let mut other = gw.client().await;
    let info = other.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}

#[tokio::test]
async fn system_disconnect_flushes_replies_already_queued() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    // Several requests in one burst, the disconnect last: every earlier reply arrives first.
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(ws.request("system.info", json!({})).await);
    }
    let disconnect = ws.request("system.disconnect", json!({})).await;
    let mut seen = Vec::new();
    while let Some(frame) = ws.next_frame().await {
        seen.push(frame["id"].as_i64().expect("integer id"));
        if frame["id"] == disconnect {
            assert_eq!(frame["result"]["success"], true, "{frame}");
            break;
        }
    }
    for id in ids.iter().chain(std::iter::once(&disconnect)) {
        assert!(
            seen.contains(id),
            "reply to {id} delivered before the close: {seen:?}"
        );
    }
    assert_eq!(ws.close_code().await, Some(1000));
}

#[tokio::test]
async fn system_capabilities_reports_limits_from_config() {
    let gw = TestGateway::start(
        "max_frame_bytes = 65536\nmax_connections = 77\noutbound_buffer_frames = 33\nping_interval_ms = 12345",
    )
    .await;
    let mut ws = gw.client().await;
    let reply = ws.call("system.capabilities", json!({})).await;
    let r = &reply["result"];
    assert_eq!(
        r["limits"],
        json!({
            "maxFrameBytes": 65536,
            "maxConnections": 77,
            "outboundBufferFrames": 33,
            "pingIntervalMs": 12345
        }),
        "{reply}"
    );
    assert_eq!(r["protocol"]["version"], 1, "{reply}");
    assert!(r["featureGates"].is_object(), "{reply}");
    assert!(r["nodes"].is_object(), "{reply}");
    let modes: Vec<&str> = r["queueModes"]
        .as_array()
        .expect("queueModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for mode in ["followup", "collect", "steer", "steer_backlog", "interrupt"] {
        assert!(modes.contains(&mode), "{mode} in {modes:?}");
    }
}

#[tokio::test]
async fn system_capabilities_defaults_match_the_design() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = ws.call("system.capabilities", json!({})).await;
    let limits = &reply["result"]["limits"];
    assert_eq!(limits["maxFrameBytes"], 25 * 1024 * 1024, "{reply}");
    assert_eq!(limits["pingIntervalMs"], 30_000, "{reply}");
}

#[tokio::test]
async fn rpc_discover_returns_the_spec_document() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = ws.call("rpc.discover", json!({})).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/flynn.openrpc.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read the spec"))
        .expect("spec is JSON");
    assert_eq!(
        reply["result"], spec,
        "rpc.discover returns spec/flynn.openrpc.json unchanged"
    );
    assert_eq!(reply["result"]["openrpc"], "1.3.2");
    assert_eq!(
        reply["result"]["methods"].as_array().map(Vec::len),
        Some(42),
        "every method of the spec (the document's 39, rpc.discover, agent.approveTool, agent.attach)"
    );
}
