//! Issue 11, bounded resources: tool runs per session are bounded
//! (`tools.max_concurrent_runs_per_session`), for `tools.execute` and the agent's tool calls
//! alike, against the in-process daemon over real WebSockets. One connection used to start
//! 150 `sleep` processes at once.
//!
//! The runs that hold the slots wait on a gate file the test creates, not on a clock: they are
//! in flight for exactly as long as the test needs, however loaded the machine is.

use crate::support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::{TestGateway, Ws};
use tokio_tungstenite::tungstenite::Message;

/// The default of `tools.max_concurrent_runs_per_session`.
const DEFAULT_LIMIT: usize = 4;

/// Writes every request before reading any reply (one flush), then returns the replies in
/// request order.
async fn pipelined(ws: &mut Ws, first_id: i64, requests: &[(&str, Value)]) -> Vec<Value> {
    let ids: Vec<i64> = (first_id..).take(requests.len()).collect();
    for (id, (method, params)) in ids.iter().zip(requests) {
        let frame = json!({"id": id, "method": method, "params": params});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .expect("queue frame");
    }
    ws.stream.flush().await.expect("send frames");
    let mut replies = Vec::with_capacity(ids.len());
    for id in ids {
        replies.push(ws.reply_to(id).await.1);
    }
    replies
}

fn shell_call(session: &str, command: &str) -> (&'static str, Value) {
    (
        "tools.execute",
        json!({"tool": "shell.exec", "sessionId": session,
               "args": {"command": command}}),
    )
}

/// A run that starts by adding a line to `{gate}.started` (so the test can count the runs in
/// flight) and then waits until the file `gate` exists in the workspace (the test's
/// [`open_gate`]), then prints `done`.
fn gated_call(session: &str, gate: &str) -> (&'static str, Value) {
    shell_call(
        session,
        &format!("echo run >> {gate}.started; until [ -e {gate} ]; do sleep 0.02; done; echo done"),
    )
}

fn workspace(gw: &TestGateway) -> PathBuf {
    gw.data_dir().join("workspace")
}

/// Lets every run waiting on `gate` finish.
fn open_gate(gw: &TestGateway, gate: &str) {
    std::fs::write(workspace(gw).join(gate), "").expect("create the gate file");
}

/// Waits (generously: a liveness bound, not a speed test) until `runs` gated runs have started.
async fn wait_started(gw: &TestGateway, gate: &str, runs: usize) {
    let path = workspace(gw).join(format!("{gate}.started"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::fs::read_to_string(&path)
            .map(|text| text.lines().count())
            .unwrap_or(0);
        if started == runs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{started} of {runs} runs waiting on {gate} started within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads frames until `count` replies (events skipped) came; returns them by id.
async fn next_replies(ws: &mut Ws, count: usize) -> Vec<(i64, Value)> {
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        let frame = ws
            .next_frame()
            .await
            .expect("connection open until the replies");
        if frame.get("event").is_none() {
            let id = frame["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("a reply id: {frame}"));
            replies.push((id, frame));
        }
    }
    replies
}

/// Checks the refusal: InvalidRequest (-2) on `params.sessionId`, naming the session, the
/// limit and the key to raise.
fn assert_limit_refusal(reply: &Value, session: &str, limit: usize) {
    assert_eq!(reply["error"]["code"], json!(-2), "{reply}");
    assert_eq!(
        reply["error"]["data"]["path"],
        json!("params.sessionId"),
        "{reply}"
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(session)
            && message.contains(&limit.to_string())
            && message.contains("tools.max_concurrent_runs_per_session"),
        "the error says which session, which limit and which key: {message}"
    );
}

#[tokio::test]
async fn pipelined_tool_runs_beyond_the_per_session_limit_are_refused() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let busy = "ws:tool-flood";

    let calls: Vec<_> = (0..DEFAULT_LIMIT + 3)
        .map(|_| gated_call(busy, "flood-gate"))
        .collect();
    for (i, (method, params)) in calls.iter().enumerate() {
        let frame = json!({"id": 100 + i, "method": method, "params": params});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .expect("queue frame");
    }
    ws.stream.flush().await.expect("send frames");
    // No run can end before the gate opens: the first three replies are the refusals, and
    // once they are in, `busy` holds exactly its limit of runs.
    let refusals = next_replies(&mut ws, 3).await;
    for (_, reply) in &refusals {
        assert_limit_refusal(reply, busy, DEFAULT_LIMIT);
    }
    wait_started(&gw, "flood-gate", DEFAULT_LIMIT).await;

    // Another session is not affected while `busy` is at its limit: its call is answered
    // while every run of `busy` is still waiting on the gate.
    let mut other = gw.client().await;
    let reply = other
        .call(
            "tools.execute",
            json!({"tool": "shell.exec", "sessionId": "ws:tool-neighbour",
                   "args": {"command": "echo neighbour"}}),
        )
        .await;
    assert_eq!(reply["result"]["success"], json!(true), "{reply}");
    assert_eq!(reply["result"]["output"], json!("neighbour\n"));

    open_gate(&gw, "flood-gate");
    let mut ran = 0;
    let mut refused = refusals.len();
    for i in 0..calls.len() {
        let id = 100 + i as i64;
        if refusals.iter().any(|(refused, _)| *refused == id) {
            continue;
        }
        let (_, reply) = ws.reply_to(id).await;
        if reply.get("result").is_some() {
            assert_eq!(reply["result"]["success"], json!(true), "{reply}");
            assert_eq!(reply["result"]["output"], json!("done\n"), "{reply}");
            ran += 1;
        } else {
            assert_limit_refusal(&reply, busy, DEFAULT_LIMIT);
            refused += 1;
        }
    }
    assert_eq!(
        (ran, refused),
        (DEFAULT_LIMIT, 3),
        "exactly the limit ran, the rest were refused"
    );

    // The slots are free again once the runs ended.
    let again = pipelined(&mut ws, 200, &[shell_call(busy, "echo again")]).await;
    assert_eq!(again[0]["result"]["success"], json!(true), "{}", again[0]);
    drop((ws, other));
    gw.stop().await;
}

#[tokio::test]
async fn the_agents_tool_calls_share_the_sessions_limit_and_the_key_is_reloadable() {
    let gw = TestGateway::start("[tools]\nmax_concurrent_runs_per_session = 1\n").await;
    let mut ws = gw.client().await;
    let session = "ws:tool-agent";

    // One direct run holds the session's only slot (until the gate opens); the agent's tool
    // call is refused with the same reason, which the model reads in the tool result.
    let held = ws
        .request("tools.execute", gated_call(session, "held-gate").1)
        .await;
    wait_started(&gw, "held-gate", 1).await;
    let send = ws
        .request(
            "agent.send",
            json!({"sessionId": session,
                   "message": r#"[[tool:shell.exec {"command":"echo from-agent"}]]"#}),
        )
        .await;
    let (events, reply) = ws.reply_to(send).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let end = events
        .iter()
        .find(|e| e["event"] == json!("tool_end"))
        .unwrap_or_else(|| panic!("a tool_end event: {events:?}"));
    assert_eq!(end["data"]["result"]["success"], json!(false), "{end}");
    let error = end["data"]["result"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("tools.max_concurrent_runs_per_session") && error.contains('1'),
        "{error}"
    );
    open_gate(&gw, "held-gate");
    let (_, reply) = ws.reply_to(held).await;
    assert_eq!(reply["result"]["success"], json!(true), "{reply}");

    // Raised by config.reload: two run together now. The runs wait on a gate, so the first
    // reply is the third call's refusal, and the two others end only when the gate opens.
    gw.write_config("[tools]\nmax_concurrent_runs_per_session = 2\n");
    let reloaded = ws.call("config.reload", json!({})).await;
    assert_eq!(reloaded["result"]["success"], json!(true), "{reloaded}");
    let calls = [
        gated_call(session, "reload-gate"),
        gated_call(session, "reload-gate"),
        gated_call(session, "reload-gate"),
    ];
    for (i, (method, params)) in calls.iter().enumerate() {
        let frame = json!({"id": 500 + i, "method": method, "params": params});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .expect("queue frame");
    }
    ws.stream.flush().await.expect("send frames");
    let refused = next_replies(&mut ws, 1).await;
    assert_limit_refusal(&refused[0].1, session, 2);
    wait_started(&gw, "reload-gate", 2).await;
    open_gate(&gw, "reload-gate");
    let ran = next_replies(&mut ws, 2).await;
    for (_, reply) in &ran {
        assert_eq!(reply["result"]["success"], json!(true), "{reply}");
        assert_eq!(reply["result"]["output"], json!("done\n"), "{reply}");
    }
    drop(ws);
    gw.stop().await;
}

/// A reload while runs are in flight keeps counting them: the session does not get a fresh
/// set of slots next to the runs already going.
#[tokio::test]
async fn a_reload_does_not_reset_the_count_of_runs_in_flight() {
    let gw = TestGateway::start("[tools]\nmax_concurrent_runs_per_session = 2\n").await;
    let mut ws = gw.client().await;
    let session = "ws:tool-reload";
    let first = ws
        .request("tools.execute", gated_call(session, "gate").1)
        .await;
    let second = ws
        .request("tools.execute", gated_call(session, "gate").1)
        .await;
    wait_started(&gw, "gate", 2).await;
    let reloaded = ws.call("config.reload", json!({})).await;
    assert_eq!(reloaded["result"]["success"], json!(true), "{reloaded}");
    let third = ws
        .call("tools.execute", shell_call(session, "echo third").1)
        .await;
    assert_limit_refusal(&third, session, 2);
    open_gate(&gw, "gate");
    for id in [first, second] {
        let (_, reply) = ws.reply_to(id).await;
        assert_eq!(reply["result"]["success"], json!(true), "{reply}");
    }
    drop(ws);
    gw.stop().await;
}
