//! Exactly-once turns across reconnects (decision resumable-runs): `runId` / `runSeq` on the
//! events of a turn, `agent.attach`, `idempotencyKey` on `agent.send`, kept events bounded and
//! expiring, keys kept across a restart. Real sockets against the in-process gateway.
//!
//! Runs are held without sleeping: a third connection turns tool approval on, so the turn waits
//! at `tool_approval` until the test answers `agent.approveTool`.

use crate::support;
use crate::support::agent as agent_support;

use agent_support::*;
use serde_json::{Value, json};
use support::TestGateway;

const FAST: &str = "[queue]\ndebounce_ms = 0\n";

fn run_id(f: &Frame) -> String {
    f.value["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("event without runId: {}", f.value))
        .to_owned()
}

fn run_seq(f: &Frame) -> u64 {
    f.value["runSeq"]
        .as_u64()
        .unwrap_or_else(|| panic!("event without runSeq: {}", f.value))
}

/// Sends `message` with `key` to `session`; returns the request id.
async fn send_keyed(conn: &mut Conn, session: &str, message: &str, key: &str) -> i64 {
    conn.request(
        "agent.send",
        json!({ "sessionId": session, "message": message, "idempotencyKey": key }),
    )
    .await
}

/// Holds a turn of `session` sent by `sender` (with `key`), approval owned by `owner`.
async fn hold_keyed(owner: &mut Conn, sender: &mut Conn, session: &str, key: &str) -> (i64, Frame) {
    owner
        .ok(
            "agent.setToolUseCallback",
            json!({ "sessionId": session, "enabled": true }),
        )
        .await;
    let id = send_keyed(sender, session, HOLD_MESSAGE, key).await;
    let approval = sender.event(id, "tool_approval").await;
    (id, approval)
}

async fn approve(conn: &mut Conn, approval: &Frame) {
    let r = conn
        .ok(
            "agent.approveTool",
            json!({ "approvalId": approval.data()["approvalId"], "approved": true }),
        )
        .await;
    assert_eq!(r["accepted"], json!(true));
}

fn user_messages(history: &[(String, String)], text: &str) -> usize {
    history
        .iter()
        .filter(|(role, content)| role == "user" && content == text)
        .count()
}

#[tokio::test]
async fn a_second_connection_attaches_and_gets_the_rest_exactly_once() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:resume-attach";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let (id, approval) = hold_keyed(&mut owner, &mut a, s, "k-attach").await;
    let run = run_id(&approval);
    let seen = run_seq(&approval);

    // The running turn is visible while it runs.
    let got = owner.ok("sessions.get", json!({ "sessionId": s })).await;
    assert_eq!(got["runId"], json!(run));
    let listed = owner.ok("sessions.list", json!({})).await;
    let entry = listed["sessions"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == json!(s)).cloned())
        .expect("the session is listed");
    assert_eq!(entry["runId"], json!(run));

    // Every event of the turn so far is numbered from 1 without gaps.
    let before: Vec<u64> = a.events(id).iter().map(run_seq).collect();
    assert_eq!(before, (1..=seen).collect::<Vec<_>>());
    a.close().await;

    // B saw nothing; it attaches from the event before the approval.
    let mut b = Conn::connect(&gw, "b").await;
    let attach = b
        .request(
            "agent.attach",
            json!({ "sessionId": s, "runId": run, "afterSeq": seen - 1 }),
        )
        .await;
    let replayed = b.event(attach, "tool_approval").await;
    assert_eq!(run_seq(&replayed), seen);
    approve(&mut owner, &approval).await;
    let o = b.outcome(attach).await;
    let seqs: Vec<u64> = o.events.iter().map(run_seq).collect();
    let expected: Vec<u64> = (seen..seen + seqs.len() as u64).collect();
    assert_eq!(
        seqs,
        expected,
        "each event once, in order: {:#?}",
        o.event_values()
    );
    assert!(o.events.iter().all(|f| run_id(f) == run));
    assert_eq!(o.names().last(), Some(&"done"));
    assert_eq!(o.result()["runId"], json!(run));
    assert_eq!(o.result()["sessionId"], json!(s));
    assert_eq!(o.streamed_text(), o.content());
    b.assert_seq_contiguous();

    // Idle again: no runId; the finished turn is still attachable (grace period).
    let got = owner.ok("sessions.get", json!({ "sessionId": s })).await;
    assert!(got.get("runId").is_none(), "{got}");
    let again = b
        .request("agent.attach", json!({ "sessionId": s, "afterSeq": 0 }))
        .await;
    let o2 = b.outcome(again).await;
    assert_eq!(o2.content(), o.content());
    assert_eq!(run_seq(&o2.events[0]), 1);
    assert_eq!(
        o2.events.len() as u64,
        run_seq(o2.events.last().expect("events"))
    );

    // Beyond the end of a finished turn: a clear error.
    let last = run_seq(o.events.last().expect("events"));
    let beyond = b
        .call(
            "agent.attach",
            json!({ "sessionId": s, "runId": run, "afterSeq": last + 5 }),
        )
        .await;
    assert_eq!(beyond["error"]["code"], json!(-2));
    assert_eq!(beyond["error"]["data"]["path"], json!("params.afterSeq"));
}

#[tokio::test]
async fn repeated_sends_join_the_turn_and_never_run_it_twice() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:resume-repeat";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let (first, approval) = hold_keyed(&mut owner, &mut a, s, "k1").await;

    // During the turn: the repeat joins it from its first event.
    let during = send_keyed(&mut b, s, HOLD_MESSAGE, "k1").await;
    b.event(during, "tool_approval").await;
    // The same key with another message is refused.
    let other = b
        .call(
            "agent.send",
            json!({ "sessionId": s, "message": "something else", "idempotencyKey": "k1" }),
        )
        .await;
    assert_eq!(other["error"]["code"], json!(-2));
    assert_eq!(
        other["error"]["data"]["path"],
        json!("params.idempotencyKey")
    );

    approve(&mut owner, &approval).await;
    let oa = a.outcome(first).await;
    let ob = b.outcome(during).await;
    assert_eq!(oa.content(), ob.content());
    assert_eq!(oa.result()["runId"], ob.result()["runId"]);
    assert_eq!(ob.streamed_text(), ob.content());
    let seqs: Vec<u64> = ob.events.iter().map(run_seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // After the turn: the stored reply at once.
    let after = send_keyed(&mut b, s, HOLD_MESSAGE, "k1").await;
    let oc = b.outcome(after).await;
    assert_eq!(oc.content(), oa.content());
    assert_eq!(oc.result()["replayed"], json!(true));
    // Still kept: the turn's events again (each once), ending with `done`.
    assert_eq!(oc.names(), ob.names());
    assert_eq!(oc.streamed_text(), oc.content());

    let h = history(&mut owner, s).await;
    assert_eq!(user_messages(&h, HOLD_MESSAGE), 1, "{h:?}");
}

#[tokio::test]
async fn kept_events_expire_after_the_grace_period_and_keys_survive_a_restart() {
    let config = format!("{FAST}[agent]\nrun_grace_secs = 0\n");
    let gw = TestGateway::start(&config).await;
    let s = "ws:resume-grace";
    let mut a = Conn::connect(&gw, "a").await;
    let id = send_keyed(&mut a, s, "remember me", "k-restart").await;
    let o = a.outcome(id).await;
    let run = o.result()["runId"].as_str().expect("runId").to_owned();

    // Grace 0: the turn is forgotten right after its reply; attach then says what is kept.
    let deadline = std::time::Instant::now() + WAIT;
    let r = loop {
        let r = a
            .call("agent.attach", json!({ "sessionId": s, "runId": run }))
            .await;
        if r["error"]["data"]["path"] == json!("params.runId") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the turn was never forgotten: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kept turns of this session: none"),
        "{message}"
    );

    // The key is in the store: its reply comes back, also after a restart.
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, &config).await;
    let mut b = Conn::connect(&gw, "b").await;
    let again = send_keyed(&mut b, s, "remember me", "k-restart").await;
    let ob = b.outcome(again).await;
    assert_eq!(ob.content(), o.content());
    assert_eq!(ob.result()["replayed"], json!(true));
    assert_eq!(ob.result()["runId"], json!(run));
    let mismatch = b
        .call(
            "agent.send",
            json!({ "sessionId": s, "message": "forget me", "idempotencyKey": "k-restart" }),
        )
        .await;
    assert_eq!(mismatch["error"]["code"], json!(-2));
    let h = history(&mut b, s).await;
    assert_eq!(user_messages(&h, "remember me"), 1, "{h:?}");
}

#[tokio::test]
async fn kept_events_are_bounded_and_attach_names_what_is_kept() {
    let config = format!("{FAST}[agent]\nrun_events_max = 2\n");
    let gw = TestGateway::start(&config).await;
    let s = "ws:resume-bounded";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let (id, approval) = hold_keyed(&mut owner, &mut a, s, "k-bounded").await;
    approve(&mut owner, &approval).await;
    let o = a.outcome(id).await;
    let last = run_seq(o.events.last().expect("events"));
    assert!(last > 2, "the turn has more events than are kept: {last}");
    let run = run_id(&o.events[0]);

    let r = a
        .call(
            "agent.attach",
            json!({ "sessionId": s, "runId": run, "afterSeq": 0 }),
        )
        .await;
    assert_eq!(r["error"]["code"], json!(-2));
    assert_eq!(r["error"]["data"]["path"], json!("params.afterSeq"));
    let message = r["error"]["message"].as_str().unwrap_or_default();
    let kept = format!("kept: {}..={last}", last - 1);
    assert!(message.contains(&kept), "{message}");

    // What is kept can still be had.
    let ok = a
        .request(
            "agent.attach",
            json!({ "sessionId": s, "runId": run, "afterSeq": last - 2 }),
        )
        .await;
    let o2 = a.outcome(ok).await;
    let seqs: Vec<u64> = o2.events.iter().map(run_seq).collect();
    assert_eq!(seqs, vec![last - 1, last]);
    assert_eq!(o2.content(), o.content());
}

#[tokio::test]
async fn attach_without_a_turn_is_a_clear_error() {
    let gw = TestGateway::start(FAST).await;
    let mut a = Conn::connect(&gw, "a").await;
    let r: Value = a
        .call("agent.attach", json!({ "sessionId": "ws:nothing-here" }))
        .await;
    assert_eq!(r["error"]["code"], json!(-2));
    assert_eq!(r["error"]["data"]["path"], json!("params.runId"));
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sessions.get"), "{message}");
}

#[tokio::test]
async fn a_restart_during_a_turn_reports_it_interrupted_never_done() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:resume-restart";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let (id, approval) = hold_keyed(&mut owner, &mut a, s, "k-restart-run").await;
    let run = run_id(&approval);

    // The gateway stops during the turn: its requester is told it was cancelled, not done.
    let dir = gw.stop().await;
    let stopped = a.outcome(id).await;
    assert_eq!(
        stopped.error()["code"],
        json!(4),
        "{:?}",
        stopped.reply.value
    );
    assert!(stopped.named("done").is_empty());

    let gw = TestGateway::start_in(dir, FAST).await;
    let mut b = Conn::connect(&gw, "b").await;
    // Attaching to the lost turn: interrupted (code 4, saying why), never done.
    let attach = b
        .request("agent.attach", json!({ "sessionId": s, "runId": run }))
        .await;
    let o = b.outcome(attach).await;
    assert_eq!(o.error()["code"], json!(4), "{:?}", o.reply.value);
    assert!(o.named("done").is_empty());
    // The key too: the same answer, and no second turn.
    let again = send_keyed(&mut b, s, HOLD_MESSAGE, "k-restart-run").await;
    let o = b.outcome(again).await;
    assert_eq!(o.error()["code"], json!(4), "{:?}", o.reply.value);
    let h = history(&mut b, s).await;
    assert_eq!(user_messages(&h, HOLD_MESSAGE), 1, "{h:?}");
}

/// The same `idempotencyKey` on another session is another key: it never joins, replays or
/// refuses the first session's turn, while that turn runs, while it is kept, nor from the store
/// after a restart.
#[tokio::test]
async fn an_idempotency_key_is_bound_to_its_session() {
    let gw = TestGateway::start(FAST).await;
    let key = "k-shared";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;

    // Running: the same key and message on a second session runs its own turn (its own
    // approval and runId), and another message under the key there is no mismatch.
    let (id1, approval1) = hold_keyed(&mut owner, &mut a, "ws:key-one", key).await;
    let (id2, approval2) = hold_keyed(&mut owner, &mut b, "ws:key-two", key).await;
    assert_ne!(run_id(&approval1), run_id(&approval2));
    let id3 = send_keyed(&mut b, "ws:key-three", "another message", key).await;
    let o3 = b.outcome(id3).await;
    assert_eq!(
        o3.content(),
        "You said: another message",
        "{:?}",
        o3.reply.value
    );
    approve(&mut owner, &approval1).await;
    approve(&mut owner, &approval2).await;
    let (o1, o2) = (a.outcome(id1).await, b.outcome(id2).await);
    for o in [&o1, &o2, &o3] {
        assert!(o.result()["replayed"].is_null(), "{:?}", o.reply.value);
    }
    assert_ne!(o1.result()["runId"], o2.result()["runId"]);

    // Ended and kept: a fourth session's send under the key is a new turn, not a replay.
    let id4 = send_keyed(&mut a, "ws:key-four", "another message", key).await;
    let o4 = a.outcome(id4).await;
    assert!(o4.result()["replayed"].is_null(), "{:?}", o4.reply.value);
    assert_ne!(o4.result()["runId"], o3.result()["runId"]);

    // From the store, after a restart: still per session (the first session's repeat replays).
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, FAST).await;
    let mut c = Conn::connect(&gw, "c").await;
    let id5 = send_keyed(&mut c, "ws:key-five", "another message", key).await;
    let o5 = c.outcome(id5).await;
    assert!(o5.result()["replayed"].is_null(), "{:?}", o5.reply.value);
    let again = send_keyed(&mut c, "ws:key-three", "another message", key).await;
    assert_eq!(c.outcome(again).await.result()["replayed"], json!(true));
    for (session, message) in [
        ("ws:key-one", HOLD_MESSAGE),
        ("ws:key-two", HOLD_MESSAGE),
        ("ws:key-three", "another message"),
        ("ws:key-four", "another message"),
        ("ws:key-five", "another message"),
    ] {
        let h = history(&mut c, session).await;
        assert_eq!(user_messages(&h, message), 1, "{session}: {h:?}");
    }
}
