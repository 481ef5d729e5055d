//! Helpers shared by the method tests of nodes, canvas, presence, analytics and operations:
//! reply checks, clock helpers that wait for a condition instead of sleeping a fixed time, and
//! fake operator tools.
#![allow(dead_code)]

pub mod fake_tools;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestGateway, Ws};

/// The `result` of a reply, failing the test with the whole reply when it is an error.
pub fn ok(reply: &Value) -> &Value {
    assert!(
        reply.get("error").is_none(),
        "expected a result, got an error: {reply}"
    );
    reply
        .get("result")
        .expect("a reply has a result or an error")
}

/// Calls `method` and returns its result (the test fails on an error reply).
pub async fn call_ok(ws: &mut Ws, method: &str, params: Value) -> Value {
    let reply = ws.call(method, params.clone()).await;
    assert!(
        reply.get("error").is_none(),
        "{method} {params} failed: {reply}"
    );
    reply["result"].clone()
}

/// Checks an InvalidRequest (-2) reply naming `path` in `error.data.path`, with a message.
pub fn assert_invalid(reply: &Value, path: &str, what: &str) {
    assert_eq!(
        reply["error"]["code"],
        json!(-2),
        "{what}: expected InvalidRequest (-2), got {reply}"
    );
    assert_eq!(
        reply["error"]["data"]["path"],
        json!(path),
        "{what}: error.data.path, got {reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "{what}: the error must say what was wrong: {reply}"
    );
    assert!(reply.get("result").is_none(), "{what}: {reply}");
}

/// Checks an error reply with `code`.
pub fn assert_code(reply: &Value, code: i64, what: &str) {
    assert_eq!(
        reply["error"]["code"],
        json!(code),
        "{what}: expected error code {code}, got {reply}"
    );
    assert!(reply.get("result").is_none(), "{what}: {reply}");
}

/// Milliseconds since the Unix epoch, as the gateway counts them.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Returns once the wall clock has passed `ms`, so the next timestamp the gateway takes is
/// strictly later. Waits at most a few milliseconds (it is a clock condition, not a delay).
pub async fn wait_past(ms: u64) {
    while now_ms() <= ms {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Closes the client side and reads until the server's close frame.
pub async fn close(mut ws: Ws) {
    let _ = ws.stream.close(None).await;
    let _ = ws.close_code().await;
}

/// Calls `method` until `done(result)` holds (the server applies some changes, such as the
/// clean-up after a connection closes, asynchronously). Fails after 60 s (a liveness bound).
pub async fn poll_until(
    ws: &mut Ws,
    method: &str,
    params: Value,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let result = call_ok(ws, method, params.clone()).await;
        if done(&result) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: condition not reached within 60 s; last {method} result: {result}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The connection id the gateway gave this connection (`system.info` `connectionId`).
pub async fn connection_id(ws: &mut Ws) -> String {
    let info = call_ok(ws, "system.info", json!({})).await;
    info["connectionId"]
        .as_str()
        .unwrap_or_else(|| panic!("system.info has a connectionId: {info}"))
        .to_owned()
}

/// Stops `gw` and starts a new gateway on the same directory with `extra_toml`.
pub async fn restart(gw: TestGateway, extra_toml: &str) -> TestGateway {
    let dir = gw.stop().await;
    TestGateway::start_in(dir, extra_toml).await
}

/// A TOML basic string for a path or any text (quotes and backslashes escaped).
pub fn toml_str(text: &str) -> String {
    toml_quote(text)
}

fn toml_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Drops the clients (an unread client delays a graceful shutdown by the close-handshake
/// timeout) and stops the gateway.
pub async fn stop(gw: TestGateway, clients: impl IntoIterator<Item = Ws>) {
    for ws in clients {
        drop(ws);
    }
    gw.stop().await;
}
