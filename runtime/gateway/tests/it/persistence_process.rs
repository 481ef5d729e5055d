//! The daemon as a process: a kill -9 loses no acknowledged message, and SIGTERM closes every
//! client with 1001 and exits 0.

use crate::support;

use crate::support::process;

use std::time::Duration;

use futures_util::StreamExt;

use process::GatewayProcess;
use serde_json::{Value, json};
use support::Ws;

/// A config file without the 250 ms debounce, so the test does not wait for it.
fn fast_queue_config(dir: &std::path::Path) -> String {
    let path = dir.join("fast.toml");
    std::fs::write(&path, "[queue]\ndebounce_ms = 0\n").expect("write config");
    path.display().to_string()
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = fast_queue_config(dir.path());
    let mut gateway = GatewayProcess::spawn(&data, &["--config", &config], &[]).await;
    let mut ws = Ws::connect(&gateway.url(), &[]).await.expect("connects");

    let sessions = ["telegram:k1", "discord:k2", "ws:k3"];
    let mut acknowledged: Vec<(String, String, String)> = Vec::new();
    for i in 0..12 {
        let session = sessions[i % sessions.len()];
        let message = format!("message number {i} for {session}");
        let id = ws
            .request(
                "agent.send",
                json!({ "sessionId": session, "message": message }),
            )
            .await;
        let (_, reply) = ws.reply_to(id).await;
        let content = reply["result"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{reply}"))
            .to_owned();
        acknowledged.push((session.to_owned(), message, content));
    }
    // One more in flight, then kill -9 at once.
    ws.request(
        "agent.send",
        json!({ "sessionId": "telegram:k1", "message": "in flight when killed" }),
    )
    .await;
    let status = gateway.kill9().await;
    assert!(!status.success(), "killed by SIGKILL: {status:?}");
    drop(ws);

    let gateway = GatewayProcess::spawn(&data, &["--config", &config], &[]).await;
    let mut ws = Ws::connect(&gateway.url(), &[]).await.expect("connects");
    for session in sessions {
        let got = ws
            .call(
                "sessions.get",
                json!({ "sessionId": session, "historyLimit": 1000 }),
            )
            .await;
        let history = got["result"]["history"]
            .as_array()
            .unwrap_or_else(|| panic!("{session} after kill -9: {got}"));
        let expected: Vec<Value> = acknowledged
            .iter()
            .filter(|(s, _, _)| s == session)
            .flat_map(|(_, message, content)| {
                [
                    json!({ "role": "user", "content": message }),
                    json!({ "role": "assistant", "content": content }),
                ]
            })
            .collect();
        assert!(
            history.len() >= expected.len(),
            "{session}: every acknowledged message is kept: {got}"
        );
        assert_eq!(
            &history[..expected.len()],
            &expected[..],
            "{session}: acknowledged history, in order"
        );
        // Whatever was in flight may or may not be there, but nothing else is.
        for extra in &history[expected.len()..] {
            assert!(
                session == "telegram:k1",
                "{session}: unexpected extra message {extra}"
            );
        }
    }
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    const TOKEN: &str = "sigterm-token-from-env-123";
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gateway = GatewayProcess::spawn(
        &dir.path().join("data"),
        &[],
        &[("FLYNN_SERVER_TOKEN", TOKEN)],
    )
    .await;
    let auth = format!("Bearer {TOKEN}");
    // The token from the environment is in force.
    let mut anonymous = Ws::connect(&gateway.url(), &[]).await.expect("upgrade");
    let frame = anonymous.next_frame().await.expect("error frame");
    assert_eq!(frame["error"]["code"], -4, "{frame}");
    assert_eq!(anonymous.close_code().await, Some(1008));

    let mut idle = Ws::connect(&gateway.url(), &[("Authorization", &auth)])
        .await
        .expect("connects");
    let mut busy = Ws::connect(&gateway.url(), &[("Authorization", &auth)])
        .await
        .expect("connects");
    let info = idle.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
    // A long run in progress (first content event seen) when the signal comes.
    busy.request(
        "agent.send",
        json!({ "message": "[[delay:100]] [[long:300]]" }),
    )
    .await;
    let first = busy.next_frame().await.expect("first event");
    assert_eq!(first["event"], "content", "{first}");

    gateway.signal("TERM");
    assert_eq!(idle.close_code().await, Some(1001), "idle client");
    assert_eq!(busy.close_code().await, Some(1001), "client with a run");
    // Reading on sends our close reply; the server then ends both connections.
    for ws in [&mut anonymous, &mut idle, &mut busy] {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), ws.stream.next()).await
        {
        }
    }
    let status = gateway.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "graceful exit: {status:?}");
    let log = gateway.stderr_text();
    assert!(
        !log.contains(TOKEN),
        "the token never appears in logs:\n{log}"
    );
}

#[tokio::test]
async fn sigterm_gives_in_flight_requests_a_terminal_reply() {
    // "Every request gets its own terminal reply"; at shutdown in-flight work is finished or
    // cancelled, and its requester is told before the connection closes.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gateway = GatewayProcess::spawn(&dir.path().join("data"), &[], &[]).await;
    let mut busy = Ws::connect(&gateway.url(), &[]).await.expect("connects");
    let id = busy
        .request(
            "agent.send",
            json!({ "message": "[[delay:100]] [[long:300]]" }),
        )
        .await;
    let first = busy.next_frame().await.expect("first event");
    assert_eq!(first["event"], "content", "{first}");
    gateway.signal("TERM");
    let mut reply = None;
    while let Some(frame) = busy.next_frame().await {
        if frame["id"] == id && frame.get("event").is_none() {
            reply = Some(frame);
        }
    }
    let reply = reply.expect("a terminal reply to the in-flight agent.send before the close");
    assert!(
        reply.get("result").is_some() || reply["error"]["code"].is_i64(),
        "{reply}"
    );
    assert_eq!(
        gateway.wait_exit(Duration::from_secs(60)).await.code(),
        Some(0)
    );
}
