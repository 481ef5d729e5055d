//! Smoke test: one tour of a freshly started gateway as a first client sees it. A connection,
//! a session, one agent turn that runs a tool, the session found again, a pairing code, the
//! configuration without secrets, and the two commonest mistakes answered with their error
//! codes. The areas have their own detailed tests; this one fails first when the daemon as a
//! whole does not come up. Well-formed calls go through the generated Rust client (so every
//! reply also decodes into the spec's types); the agent turn, whose events are checked frame by
//! frame, and the mistakes, which the typed client cannot make, go over a raw WebSocket.

use std::num::NonZeroU64;

use crate::support;
use crate::support::sid;

use flynn_protocol::types;
use serde_json::{Value, json};
use support::TestGateway;

/// The `result` of a reply, failing with the whole reply when it is an error.
fn result<'a>(reply: &'a Value, what: &str) -> &'a Value {
    assert!(reply.get("error").is_none(), "{what}: {reply}");
    reply
        .get("result")
        .unwrap_or_else(|| panic!("{what}: no result in {reply}"))
}

#[tokio::test]
async fn smoke() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let client = gw.typed_client().await;

    let info = client
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info");
    assert!(info.connection_id.is_some(), "{info:?}");

    client
        .sessions_create(types::SessionsCreateParams {
            session_id: Some(sid("telegram:1")),
        })
        .await
        .expect("sessions.create");

    // The embedded model runs the tool the message names, then answers.
    let id = ws
        .request(
            "agent.send",
            json!({
                "sessionId": "telegram:1",
                "message": "hello there [[tool:shell.exec {\"command\":\"echo hi\"}]]"
            }),
        )
        .await;
    let (events, reply) = ws.reply_to(id).await;
    result(&reply, "agent.send");
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for expected in ["tool_start", "tool_end", "done"] {
        assert!(
            names.contains(&expected),
            "agent.send events {names:?} lack {expected}"
        );
    }

    let listed = client
        .sessions_list(types::SessionsListParams {
            include_persisted: true,
            ..Default::default()
        })
        .await
        .expect("sessions.list");
    assert!(
        listed.sessions.iter().any(|s| s.id == "telegram:1"),
        "sessions.list lacks telegram:1: {listed:?}"
    );
    let got = client
        .sessions_get(types::SessionsGetParams {
            session_id: sid("telegram:1"),
            history_limit: NonZeroU64::new(200).expect("200 is not zero"),
        })
        .await
        .expect("sessions.get");
    assert_eq!(got.id, "telegram:1", "{got:?}");

    client
        .system_capabilities(types::SystemCapabilitiesParams {})
        .await
        .expect("system.capabilities");
    client
        .pairing_generate(types::PairingGenerateParams {
            channel: "telegram".into(),
        })
        .await
        .expect("pairing.generate");
    client
        .config_get(types::ConfigGetParams {})
        .await
        .expect("config.get");

    let unknown = ws.call("nope", json!({})).await;
    assert_eq!(
        unknown["error"]["code"],
        json!(-3),
        "MethodNotFound: {unknown}"
    );
    let wrong_type = ws.call("sessions.get", json!({"sessionId": 5})).await;
    assert_eq!(
        wrong_type["error"]["code"],
        json!(-2),
        "InvalidRequest: {wrong_type}"
    );
    assert_eq!(
        wrong_type["error"]["data"]["path"],
        json!("params.sessionId"),
        "the error names the param: {wrong_type}"
    );
    gw.stop().await;
}
