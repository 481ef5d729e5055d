//! Smoke test: one tour of a freshly started gateway as a first client sees it. A connection,
//! a session, one agent turn that runs a tool, the session found again, a pairing code, the
//! configuration without secrets, and the two commonest mistakes answered with their error
//! codes. The areas have their own detailed tests; this one fails first when the daemon as a
//! whole does not come up.

use crate::support;

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

    let info = ws.call("system.info", json!({})).await;
    assert!(
        result(&info, "system.info")["connectionId"].is_string(),
        "{info}"
    );

    let created = ws
        .call("sessions.create", json!({"sessionId": "telegram:1"}))
        .await;
    result(&created, "sessions.create");

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

    let listed = ws
        .call("sessions.list", json!({"includePersisted": true}))
        .await;
    assert!(
        result(&listed, "sessions.list")
            .to_string()
            .contains("telegram:1"),
        "sessions.list lacks telegram:1: {listed}"
    );
    let got = ws
        .call("sessions.get", json!({"sessionId": "telegram:1"}))
        .await;
    result(&got, "sessions.get");

    let capabilities = ws.call("system.capabilities", json!({})).await;
    result(&capabilities, "system.capabilities");
    let pairing = ws
        .call("pairing.generate", json!({"channel": "telegram"}))
        .await;
    result(&pairing, "pairing.generate");
    let config = ws.call("config.get", json!({})).await;
    result(&config, "config.get");

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
