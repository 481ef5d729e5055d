//! Issue 11, bounded resources: tool runs per session are bounded
//! (`tools.max_concurrent_runs_per_session`), for `tools.execute` and the agent's tool calls
//! alike, against the in-process daemon over real WebSockets. One connection used to start
//! 150 `sleep` processes at once.

use crate::support;

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

fn sleep_call(session: &str, seconds: u32) -> (&'static str, Value) {
    (
        "tools.execute",
        json!({"tool": "shell.exec", "sessionId": session,
               "args": {"command": format!("sleep {seconds}; echo done")}}),
    )
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
        .map(|_| sleep_call(busy, 2))
        .collect();
    let started = Instant::now();
    // Replies come in request order here; collect them concurrently with the other session's
    // call below by reading them after it (the refusals are immediate, the runs take 2 s).
    for (i, (method, params)) in calls.iter().enumerate() {
        let frame = json!({"id": 100 + i, "method": method, "params": params});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .expect("queue frame");
    }
    ws.stream.flush().await.expect("send frames");

    // Another session is not affected while `busy` is at its limit.
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
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "the other session's call waited for the busy one: {:?}",
        started.elapsed()
    );

    let mut ran = 0;
    let mut refused = 0;
    for i in 0..calls.len() {
        let (_, reply) = ws.reply_to(100 + i as i64).await;
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
    let again = pipelined(&mut ws, 200, &[sleep_call(busy, 0)]).await;
    assert_eq!(again[0]["result"]["success"], json!(true), "{}", again[0]);
    drop((ws, other));
    gw.stop().await;
}

#[tokio::test]
async fn the_agents_tool_calls_share_the_sessions_limit_and_the_key_is_reloadable() {
    let gw = TestGateway::start("[tools]\nmax_concurrent_runs_per_session = 1\n").await;
    let mut ws = gw.client().await;
    let session = "ws:tool-agent";

    // One direct run holds the session's only slot; the agent's tool call is refused with the
    // same reason, which the model reads in the tool result.
    let held = ws.request("tools.execute", sleep_call(session, 2).1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    let (_, reply) = ws.reply_to(held).await;
    assert_eq!(reply["result"]["success"], json!(true), "{reply}");

    // Raised by config.reload: two run together now.
    gw.write_config("[tools]\nmax_concurrent_runs_per_session = 2\n");
    let reloaded = ws.call("config.reload", json!({})).await;
    assert_eq!(reloaded["result"]["success"], json!(true), "{reloaded}");
    let replies = pipelined(
        &mut ws,
        500,
        &[
            sleep_call(session, 1),
            sleep_call(session, 1),
            sleep_call(session, 1),
        ],
    )
    .await;
    let ran = replies.iter().filter(|r| r.get("result").is_some()).count();
    assert_eq!(ran, 2, "{replies:?}");
    let refused = replies
        .iter()
        .find(|r| r.get("error").is_some())
        .expect("one refusal");
    assert_limit_refusal(refused, session, 2);
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
    let first = ws.request("tools.execute", sleep_call(session, 2).1).await;
    let second = ws.request("tools.execute", sleep_call(session, 2).1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reloaded = ws.call("config.reload", json!({})).await;
    assert_eq!(reloaded["result"]["success"], json!(true), "{reloaded}");
    let third = ws.call("tools.execute", sleep_call(session, 0).1).await;
    assert_limit_refusal(&third, session, 2);
    for id in [first, second] {
        let (_, reply) = ws.reply_to(id).await;
        assert_eq!(reply["result"]["success"], json!(true), "{reply}");
    }
    drop(ws);
    gw.stop().await;
}
