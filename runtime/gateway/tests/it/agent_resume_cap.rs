//! The gateway-wide cap of kept turns (decision resumable-runs, `agent.runs_kept_max` and
//! `agent.runs_kept_max_bytes`): when more turns end than the cap holds, the finished turns that
//! ended first are forgotten first, an attach to one of them is the clear "not kept" error naming
//! what is kept, its `idempotencyKey` is answered from the store, and a running turn is never
//! forgotten. Real sockets against the in-process gateway; turns are held at tool approval.

use crate::support;
use crate::support::agent as agent_support;

use agent_support::*;
use serde_json::{Value, json};
use support::TestGateway;

fn config(kept_max: usize, kept_max_bytes: usize) -> String {
    format!(
        "[queue]\ndebounce_ms = 0\n[agent]\nrun_grace_secs = 300\nruns_kept_max = {kept_max}\nruns_kept_max_bytes = {kept_max_bytes}\n"
    )
}

/// Runs one keyed turn of `session` to its end; returns its runId.
async fn finished_turn(conn: &mut Conn, session: &str, message: &str) -> String {
    let id = conn
        .request(
            "agent.send",
            json!({ "sessionId": session, "message": message, "idempotencyKey": message }),
        )
        .await;
    let o = conn.outcome(id).await;
    o.result()["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?}", o.reply.value))
        .to_owned()
}

async fn attach(conn: &mut Conn, session: &str, run: &str) -> Value {
    conn.call(
        "agent.attach",
        json!({ "sessionId": session, "runId": run }),
    )
    .await
}

/// The "not kept" error of an attach, with what it says is kept.
fn not_kept(reply: &Value, kept: &str) {
    assert_eq!(reply["error"]["code"], json!(-2), "{reply}");
    assert_eq!(reply["error"]["data"]["path"], json!("params.runId"));
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("agent.runs_kept_max"), "{message}");
    assert!(
        message.contains(&format!("kept turns of this session: {kept}")),
        "{message}"
    );
}

/// Attaches to the held turn from `conn`, lets it go on, and checks the attach follows it to
/// its end: a running turn is never forgotten.
async fn running_turn_is_attachable(owner: &mut Conn, conn: &mut Conn, session: &str, held: &Held) {
    let run = held.approval.value["runId"].as_str().expect("runId");
    let attach = conn
        .request(
            "agent.attach",
            json!({ "sessionId": session, "runId": run }),
        )
        .await;
    conn.event(attach, "tool_approval").await;
    release(owner, held).await;
    let o = conn.outcome(attach).await;
    assert_eq!(o.names().last(), Some(&"done"), "{:?}", o.reply.value);
    assert_eq!(o.result()["runId"], json!(run));
}

#[tokio::test]
async fn beyond_the_turn_cap_the_oldest_finished_turns_go_first_and_running_ones_stay() {
    let gw = TestGateway::start(&config(3, 64 << 20)).await;
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    // One turn runs throughout (it counts, but is never forgotten).
    let held = hold(&mut owner, "ws:cap-running").await;

    let a1 = finished_turn(&mut a, "ws:cap-a", "a one").await;
    let b1 = finished_turn(&mut a, "ws:cap-b", "b one").await;
    // Kept now: the running turn, a1, b1 (the cap). Each end beyond it forgets the oldest.
    let a2 = finished_turn(&mut a, "ws:cap-a", "a two").await;
    let b2 = finished_turn(&mut a, "ws:cap-b", "b two").await;

    not_kept(&attach(&mut a, "ws:cap-a", &a1).await, &a2);
    not_kept(&attach(&mut a, "ws:cap-b", &b1).await, &b2);
    for (session, run) in [("ws:cap-a", &a2), ("ws:cap-b", &b2)] {
        let r = attach(&mut a, session, run).await;
        assert_eq!(r["result"]["runId"], json!(run), "{r}");
    }
    // The forgotten turn's key is answered from the store: the same reply, not interrupted.
    let again = a
        .request(
            "agent.send",
            json!({ "sessionId": "ws:cap-a", "message": "a one", "idempotencyKey": "a one" }),
        )
        .await;
    let o = a.outcome(again).await;
    assert_eq!(o.result()["replayed"], json!(true), "{:?}", o.reply.value);
    assert_eq!(o.result()["runId"], json!(a1));
    assert_eq!(o.content(), "You said: a one");

    running_turn_is_attachable(&mut owner, &mut a, "ws:cap-running", &held).await;
}

#[tokio::test]
async fn beyond_the_byte_cap_finished_turns_go_and_running_ones_stay() {
    // One byte: any kept event is over it, so a finished turn is forgotten as it ends, while
    // the running turn (over the cap by itself) stays.
    let gw = TestGateway::start(&config(1000, 1)).await;
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let held = hold(&mut owner, "ws:bytes-running").await;
    let done = finished_turn(&mut a, "ws:bytes-done", "over the byte cap").await;
    not_kept(&attach(&mut a, "ws:bytes-done", &done).await, "none");
    running_turn_is_attachable(&mut owner, &mut a, "ws:bytes-running", &held).await;
    // Once it has ended, it goes too.
    let run = held.approval.value["runId"].as_str().expect("runId");
    not_kept(&attach(&mut a, "ws:bytes-running", run).await, "none");
}
