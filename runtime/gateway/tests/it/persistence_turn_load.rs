//! kill -9 under turn load: many sessions send turns at once (so the store commits them in
//! groups, one WAL sync per group), the daemon is killed while turns are in flight, and after
//! a restart every turn whose reply a client received is in the store with both its messages,
//! in order. Nothing here depends on timing: the kill comes after a count of replies.

use crate::support;

use crate::support::process;

use std::sync::{Arc, Mutex};

use process::GatewayProcess;
use serde_json::{Value, json};
use support::Ws;

/// Sessions sending at once, one connection and one turn in flight each.
const SESSIONS: usize = 16;
/// Replies received (over all sessions) before the kill.
const REPLIES_BEFORE_KILL: usize = 160;

/// A config file without the 250 ms debounce.
fn fast_queue_config(dir: &std::path::Path) -> String {
    let path = dir.join("fast.toml");
    std::fs::write(&path, "[queue]\ndebounce_ms = 0\n").expect("write config");
    path.display().to_string()
}

/// An acknowledged turn: its session, message and the reply's content.
type Acknowledged = Arc<Mutex<Vec<(String, String, String)>>>;

/// Sends turns to `session` until the connection breaks, recording each acknowledged one;
/// signals `enough` once `REPLIES_BEFORE_KILL` replies were seen over all sessions.
async fn send_turns(
    mut ws: Ws,
    session: String,
    acknowledged: Acknowledged,
    enough: Arc<tokio::sync::Notify>,
) {
    for i in 0.. {
        let message = format!("turn {i} of {session}");
        let id = ws
            .request(
                "agent.send",
                json!({ "sessionId": session, "message": message }),
            )
            .await;
        // Events first, then the reply; a closed connection (the kill) ends the loop.
        let reply = loop {
            match ws.next_frame().await {
                None => return,
                Some(frame) if frame["id"] == json!(id) && frame.get("event").is_none() => {
                    break frame;
                }
                Some(_) => {}
            }
        };
        let Some(content) = reply["result"]["content"].as_str() else {
            // A turn refused while the daemon goes down is not acknowledged.
            return;
        };
        let count = {
            let mut acked = acknowledged.lock().expect("lock");
            acked.push((session.clone(), message, content.to_owned()));
            acked.len()
        };
        if count == REPLIES_BEFORE_KILL {
            enough.notify_one();
        }
    }
}

#[tokio::test]
async fn kill_9_under_turn_load_loses_no_acknowledged_turn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = fast_queue_config(dir.path());
    let mut gateway = GatewayProcess::spawn(&data, &["--config", &config], &[]).await;

    let acknowledged: Acknowledged = Arc::default();
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut senders = Vec::new();
    for s in 0..SESSIONS {
        let ws = Ws::connect(&gateway.url(), &[]).await.expect("connects");
        senders.push(tokio::spawn(send_turns(
            ws,
            format!("load:s{s}"),
            acknowledged.clone(),
            enough.clone(),
        )));
    }
    enough.notified().await;
    let status = gateway.kill9().await;
    assert!(!status.success(), "killed by SIGKILL: {status:?}");
    for sender in senders {
        sender
            .await
            .expect("sender ends when the connection breaks");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= REPLIES_BEFORE_KILL);

    let gateway = GatewayProcess::spawn(&data, &["--config", &config], &[]).await;
    let mut ws = Ws::connect(&gateway.url(), &[]).await.expect("connects");
    for s in 0..SESSIONS {
        let session = format!("load:s{s}");
        let expected: Vec<Value> = acknowledged
            .iter()
            .filter(|(id, _, _)| *id == session)
            .flat_map(|(_, message, content)| {
                [
                    json!({ "role": "user", "content": message }),
                    json!({ "role": "assistant", "content": content }),
                ]
            })
            .collect();
        let got = ws
            .call(
                "sessions.get",
                json!({ "sessionId": session, "historyLimit": 1000 }),
            )
            .await;
        let history: Vec<Value> = got["result"]["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|m| json!({ "role": m["role"], "content": m["content"] }))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            history.len() >= expected.len(),
            "{session}: every acknowledged turn is kept ({} of {} messages): {got}",
            history.len(),
            expected.len()
        );
        assert_eq!(
            &history[..expected.len()],
            &expected[..],
            "{session}: acknowledged turns, in order"
        );
        // At most the turn in flight at the kill follows: its message, maybe its answer.
        assert!(
            history.len() <= expected.len() + 2,
            "{session}: only the turn in flight may follow: {got}"
        );
    }
}
