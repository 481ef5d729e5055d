//! `agent.cancel` over real WebSockets: queued requests are rejected, the active run is cancelled
//! and the abort reaches what the run is waiting on: the embedded model's stream, a `shell.exec`
//! process group, and an OpenAI-compatible provider's HTTP stream (the fake model server of
//! `flynn_test_support::model_server`).
//!
//! No assertion depends on the machine's speed: what the cancel must stop would otherwise go on
//! for ten minutes or more (or forever), and the tests wait for the end with the generous
//! [`WAIT`] bound.

use crate::support;
use crate::support::agent as agent_support;

use std::time::Duration;

use agent_support::*;
use flynn_test_support::model_server::{MockServer, Part, Script};
use serde_json::json;
use support::TestGateway;

const FAST: &str = "[queue]\ndebounce_ms = 0\n";

/// An error outcome cancelled by the client: error event code 4, then error response code 4.
fn assert_cancelled(o: &Outcome) {
    assert_eq!(o.error()["code"], json!(4), "{}", o.reply.value);
    assert_eq!(event_code(o), 4, "{:?}", o.event_values());
    assert!(
        o.first("done").is_none(),
        "a cancelled run has no done event"
    );
}

#[tokio::test]
async fn agent_cancel_rejects_queued_requests_and_cancels_the_active_run() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:cancel";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let mut c = Conn::connect(&gw, "c").await;
    let mut d = Conn::connect(&gw, "d").await;

    let held = hold(&mut a, s).await;
    let q1 = b.send(s, "queued one").await;
    b.barrier(s).await;
    let q2 = c.send(s, "queued two").await;
    c.barrier(s).await;

    let r = d.ok("agent.cancel", json!({ "sessionId": s })).await;
    assert_eq!(r, json!({ "cancelled": true, "rejected": 2 }));
    let oa = a.outcome(held.id).await;
    let o1 = b.outcome(q1).await;
    let o2 = c.outcome(q2).await;
    assert_cancelled(&oa);
    assert_cancelled(&o1);
    assert_cancelled(&o2);
    assert!(
        o1.named("content").is_empty() && o2.named("content").is_empty(),
        "queued requests never ran"
    );
    let h = history(&mut d, s).await;
    assert!(!h.iter().any(|(_, c)| c.starts_with("queued")), "{h:?}");

    // Idempotent and harmless on an idle or unknown session.
    assert_eq!(
        d.ok("agent.cancel", json!({ "sessionId": s })).await,
        json!({ "cancelled": false, "rejected": 0 })
    );
    assert_eq!(
        d.ok("agent.cancel", json!({ "sessionId": "ws:never-used" }))
            .await,
        json!({ "cancelled": false, "rejected": 0 })
    );
    // The lane is free again.
    let after = b.send(s, "after the cancel").await;
    assert_eq!(
        b.outcome(after).await.content(),
        "You said: after the cancel"
    );

    // Spec (agent.cancel): each rejected queued request gets code 4 and `data.queue.code`
    // `cancelled`; droppedCount counts the requests this one decision dropped.
    for o in [&o1, &o2] {
        let q = event_queue(o);
        assert_eq!(
            q,
            json!({ "code": "cancelled", "laneId": s, "mode": "followup", "overflow": "drop_old", "droppedCount": 2 }),
            "{:?}",
            o.event_values()
        );
        assert_eq!(reply_queue(o), q);
    }
}

#[tokio::test]
async fn cancel_during_a_model_stream_ends_the_run_promptly() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:cancel-stream";
    let mut a = Conn::connect(&gw, "a").await;
    let mut d = Conn::connect(&gw, "d").await;

    // 30 chunks a minute apart (the longest delay the embedded model takes): half an hour if
    // nothing stops it, and the next chunk a minute after the first.
    let id = a.send(s, "[[delay:60000]] [[long:90]]").await;
    let first = a.event(id, "content").await;
    let r = d.ok("agent.cancel", json!({ "sessionId": s })).await;
    assert_eq!(r, json!({ "cancelled": true, "rejected": 0 }));
    let o = a.outcome(id).await;
    assert_cancelled(&o);
    // The run ended before the model's next chunk: the cancel interrupted the model's wait
    // instead of letting the stream go on (which would take half an hour, or a minute if the
    // cancel were only seen between chunks).
    let chunks = o.named("content").len();
    assert_eq!(
        chunks, 1,
        "{chunks} content chunks arrived: the stream went on after the cancel"
    );
    // A liveness bound, not a speed test: a cancel seen only at the next chunk would take
    // about a minute; one that interrupts the wait takes milliseconds, even under load.
    let took = o.reply.at.duration_since(first.at);
    assert!(
        took < Duration::from_secs(45),
        "the run took {took:?} to end after the cancel: it waited for the model's next chunk"
    );
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (`Z`) is dead; it only waits for its parent to reap it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

async fn read_pid(path: &std::path::Path) -> u32 {
    let mut pid = None;
    let found = eventually(WAIT, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        pid = text.trim().parse::<u32>().ok();
        std::future::ready(pid.is_some())
    })
    .await;
    assert!(found, "{} was not written", path.display());
    pid.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_long_shell_exec_kills_its_whole_process_group() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:cancel-shell";
    let mut a = Conn::connect(&gw, "a").await;
    let mut d = Conn::connect(&gw, "d").await;
    let workspace = gw.data_dir().join("workspace");

    // Ten minutes unless the cancel kills it: the run's end and the processes' exit within the
    // generous WAIT bound can only come from the cancel.
    let command = "echo $$ > shell.pid; sleep 600 & echo $! > sleep.pid; wait";
    let message = format!("[[tool:shell.exec {}]]", json!({ "command": command }));
    let id = a.send(s, &message).await;
    a.event(id, "tool_start").await;
    let shell = read_pid(&workspace.join("shell.pid")).await;
    let sleeper = read_pid(&workspace.join("sleep.pid")).await;
    assert!(
        pid_alive(shell) && pid_alive(sleeper),
        "precondition: the command is running"
    );

    let r = d.ok("agent.cancel", json!({ "sessionId": s })).await;
    assert_eq!(r["cancelled"], json!(true));
    let o = a.outcome(id).await;
    assert_cancelled(&o);
    let gone = eventually(WAIT, || {
        std::future::ready(!pid_alive(shell) && !pid_alive(sleeper))
    })
    .await;
    assert!(
        gone,
        "after the cancel, shell {shell} alive: {}, background sleep {sleeper} alive: {}",
        pid_alive(shell),
        pid_alive(sleeper)
    );
}

/// One chat-completions stream chunk (the OpenAI SSE format) carrying `text`.
fn sse_delta(text: &str) -> String {
    let chunk = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "slow-test",
        "choices": [{ "index": 0, "delta": { "role": "assistant", "content": text }, "finish_reason": null }]
    });
    format!("data: {chunk}\n\n")
}

#[tokio::test]
async fn cancel_aborts_the_openai_compatible_http_stream() {
    // A chat-completions server that streams one delta, then holds the stream open until the
    // client closes it (which the server reports).
    let mut server = MockServer::start(
        "/v1",
        vec![Script::sse_per_event(sse_delta("Hello ").as_bytes()).then(Part::Hold)],
    )
    .await;
    let config = format!(
        "{FAST}\n[models]\ndefault_tier = \"default\"\n\n[models.tiers.default]\nkind = \"openai\"\nmodel = \"slow-test\"\nbase_url = \"{}\"\n",
        server.base_url
    );
    let gw = TestGateway::start(&config).await;
    let s = "ws:cancel-openai";
    let mut a = Conn::connect(&gw, "a").await;
    let mut d = Conn::connect(&gw, "d").await;

    let id = a.send(s, "stream slowly please").await;
    let first = a.event(id, "content").await;
    assert_eq!(first.data()["text"], json!("Hello "));
    let request = server.request().await;
    assert!(
        request.method == "POST" && request.path.contains("/chat/completions"),
        "{} {}",
        request.method,
        request.path
    );

    assert_eq!(
        d.ok("agent.cancel", json!({ "sessionId": s })).await["cancelled"],
        json!(true)
    );
    let o = a.outcome(id).await;
    assert_cancelled(&o);
    // The server holds the stream open for as long as the client keeps it: only the cancel
    // closes it, so waiting (generously) for the close is the whole check.
    tokio::time::timeout(WAIT, server.client_closed())
        .await
        .expect("the provider's HTTP connection must close after the cancel");
}
