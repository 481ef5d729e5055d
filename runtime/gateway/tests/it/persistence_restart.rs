//! Sessions and their messages survive a graceful restart on the same data directory, and a
//! resumed session continues its history.

use crate::support;

use serde_json::{Value, json};
use support::{TestGateway, Ws};

async fn exchange(ws: &mut Ws, session: &str, message: &str) -> String {
    let id = ws
        .request(
            "agent.send",
            json!({ "sessionId": session, "message": message }),
        )
        .await;
    let (_, reply) = ws.reply_to(id).await;
    reply["result"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("agent.send replied {reply}"))
        .to_owned()
}

fn summary<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["result"]["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("{id} in {list}"))
}

#[tokio::test]
async fn sessions_and_messages_survive_a_graceful_restart() {
    let gw = TestGateway::start("\n[queue]\ndebounce_ms = 0\n").await;
    let mut ws = gw.client().await;
    let a1 = exchange(&mut ws, "telegram:alice", "alice one").await;
    let a2 = exchange(&mut ws, "telegram:alice", "alice two").await;
    let b1 = exchange(&mut ws, "discord:bob", "bob one").await;
    ws.call("sessions.create", json!({ "sessionId": "slack:empty" }))
        .await;
    let before = ws
        .call("sessions.get", json!({ "sessionId": "telegram:alice" }))
        .await;
    drop(ws);
    let dir = gw.stop().await;

    let gw = TestGateway::start_in(dir, "\n[queue]\ndebounce_ms = 0\n").await;
    let mut ws = gw.client().await;
    let after = ws
        .call("sessions.get", json!({ "sessionId": "telegram:alice" }))
        .await;
    assert_eq!(
        after["result"]["history"],
        json!([
            { "role": "user", "content": "alice one" },
            { "role": "assistant", "content": a1 },
            { "role": "user", "content": "alice two" },
            { "role": "assistant", "content": a2 },
        ]),
        "{after}"
    );
    assert_eq!(after["result"]["createdAt"], before["result"]["createdAt"]);
    assert_eq!(
        after["result"]["lastActiveAt"],
        before["result"]["lastActiveAt"]
    );
    let bob = ws
        .call("sessions.get", json!({ "sessionId": "discord:bob" }))
        .await;
    assert_eq!(bob["result"]["history"][1]["content"], json!(b1), "{bob}");

    let list = ws
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    assert_eq!(summary(&list, "telegram:alice")["messageCount"], 4);
    assert_eq!(summary(&list, "discord:bob")["messageCount"], 2);
    assert_eq!(summary(&list, "slack:empty")["messageCount"], 0);

    // Resuming continues the history.
    let resumed = ws
        .call("sessions.create", json!({ "sessionId": "telegram:alice" }))
        .await;
    assert_eq!(resumed["result"]["created"], false, "{resumed}");
    let id = ws
        .request("agent.send", json!({ "message": "alice three" }))
        .await;
    let (_, reply) = ws.reply_to(id).await;
    assert_eq!(reply["result"]["sessionId"], "telegram:alice", "{reply}");
    let after = ws
        .call("sessions.get", json!({ "sessionId": "telegram:alice" }))
        .await;
    let history = after["result"]["history"].as_array().expect("history");
    assert_eq!(history.len(), 6, "{after}");
    assert_eq!(history[4]["content"], "alice three");
}

#[tokio::test]
async fn session_queue_settings_survive_a_restart() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    exchange(
        &mut ws,
        "telegram:q",
        "/queue set collect cap=3 overflow=drop_new debounce=0",
    )
    .await;
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, "").await;
    let mut ws = gw.client().await;
    let list = ws
        .call(
            "sessions.list",
            json!({ "includePersisted": true, "frontend": "telegram" }),
        )
        .await;
    let queue = &summary(&list, "telegram:q")["config"]["queue"];
    assert_eq!(queue["mode"], "collect", "{list}");
    assert_eq!(queue["cap"], 3, "{list}");
    assert_eq!(queue["overflow"], "drop_new", "{list}");
    assert_eq!(queue["debounceMs"], 0, "{list}");
}
