//! Lanes and queue modes over real WebSockets against the in-process gateway and its embedded
//! model (the README's "Queue modes").
//!
//! Runs are held at a known point without sleeping: with tool approval on, a run that calls a
//! tool waits for `agent.approveTool` (see `agent_support::hold`), so "a run is active" is an
//! event (`tool_approval`) and the run ends only when the test releases it. `Conn::barrier`
//! proves a sent message has reached its lane before the next one is sent.

use crate::support;
use crate::support::agent as agent_support;

use std::time::{Duration, Instant};

use agent_support::*;
use serde_json::{Value, json};
use support::TestGateway;

/// Followup without the debounce window, so queued turns start as soon as the lane frees.
const FAST: &str = "[queue]\ndebounce_ms = 0\n";

/// What the embedded model answers to [`HOLD_MESSAGE`] once its tool ran.
const HELD_REPLY: &str = "Tool shell.exec returned: held.";

fn said(text: &str) -> String {
    format!("You said: {text}")
}

#[tokio::test]
async fn followup_runs_queued_messages_one_at_a_time_in_fifo_order() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:followup";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let mut c = Conn::connect(&gw, "c").await;
    let mut z = Conn::connect(&gw, "z").await;

    let held = hold(&mut a, s).await;
    let b1 = b.send(s, "first queued").await;
    b.barrier(s).await;
    let c1 = c.send(s, "second queued").await;
    c.barrier(s).await;
    let b2 = b.send(s, "third queued").await;
    b.barrier(s).await;

    // The held run's message is already persisted (messages are stored as they happen).
    assert_eq!(
        history(&mut z, s)
            .await
            .first()
            .map(|(r, c)| (r.as_str(), c.as_str())),
        Some(("user", HOLD_MESSAGE))
    );
    // A whole run of another session completes meanwhile; the queued ones have produced nothing.
    let other = z.send("ws:elsewhere", "meanwhile").await;
    assert_eq!(z.outcome(other).await.content(), said("meanwhile"));
    for (conn, id) in [(&b, b1), (&c, c1), (&b, b2)] {
        assert!(
            conn.events(id).is_empty(),
            "a message queued behind an active run must not start: {:?}",
            conn.events(id)
        );
    }

    release(&mut a, &held).await;
    let oa = a.outcome(held.id).await;
    let ob1 = b.outcome(b1).await;
    let oc1 = c.outcome(c1).await;
    let ob2 = b.outcome(b2).await;
    assert_eq!(oa.content(), HELD_REPLY);
    assert_eq!(ob1.content(), said("first queued"));
    assert_eq!(oc1.content(), said("second queued"));
    assert_eq!(ob2.content(), said("third queued"));

    // Each turn starts only after the previous one is done, in the order they were sent. The
    // proof is the server's own order, not arrival times on different connections (their
    // reader tasks may run in either order): a turn stores its message when it starts and its
    // answer before it replies, and the lane starts the next turn only after that reply, so
    // the stored history alternates message, answer, message, answer in the order sent (and
    // so do the replies).
    let stored = history(&mut z, s).await;
    let stored: Vec<(&str, &str)> = stored
        .iter()
        .map(|(r, c)| (r.as_str(), c.as_str()))
        .collect();
    let (first, second, third) = (
        said("first queued"),
        said("second queued"),
        said("third queued"),
    );
    assert_eq!(
        stored,
        [
            ("user", HOLD_MESSAGE),
            ("assistant", HELD_REPLY),
            ("user", "first queued"),
            ("assistant", first.as_str()),
            ("user", "second queued"),
            ("assistant", second.as_str()),
            ("user", "third queued"),
            ("assistant", third.as_str()),
        ],
        "turns overlapped or ran out of order"
    );
    // On one connection the proof is exact: seq orders every event of the connection.
    let b1_done = ob1.first("done").expect("done of b1").seq();
    let b2_first = ob2.events.first().expect("events of b2").seq();
    assert!(
        b2_first > b1_done,
        "b2's events (from seq {b2_first}) began before b1's done (seq {b1_done})"
    );
    for conn in [&a, &b, &c, &z] {
        conn.assert_seq_contiguous();
    }
}

#[tokio::test]
async fn different_sessions_run_in_parallel() {
    let gw = TestGateway::start(FAST).await;
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;

    let held = hold(&mut a, "ws:first").await;
    let y = b.send("ws:second", "in parallel").await;
    let oy = b.outcome(y).await;
    assert_eq!(oy.content(), said("in parallel"));
    assert!(
        a.frames()
            .iter()
            .all(|f| !f.is_reply(held.id) && f.event() != Some("done")),
        "the first session's run must still be active while the second one completed"
    );

    release(&mut a, &held).await;
    let oa = a.outcome(held.id).await;
    assert_eq!(oa.content(), HELD_REPLY);
    assert!(oy.reply.at < oa.terminal_at());
}

#[tokio::test]
async fn collect_merges_queued_messages_into_one_turn() {
    let gw = TestGateway::start("[queue]\nmode = \"collect\"\ndebounce_ms = 0\n").await;
    let s = "ws:collect";
    let mut a = Conn::connect(&gw, "a").await;
    let mut conns = Vec::new();
    for name in ["b", "c", "d"] {
        conns.push(Conn::connect(&gw, name).await);
    }

    let held = hold(&mut a, s).await;
    let texts = ["collect one", "collect two", "collect three"];
    let mut ids = Vec::new();
    for (conn, text) in conns.iter_mut().zip(texts) {
        ids.push(conn.send(s, text).await);
        conn.barrier(s).await;
    }
    release(&mut a, &held).await;
    assert_eq!(a.outcome(held.id).await.content(), HELD_REPLY);

    let mut outcomes = Vec::new();
    for (conn, id) in conns.iter().zip(&ids) {
        outcomes.push(conn.outcome(*id).await);
    }
    // One combined run: the model saw all three and answered the last; everyone gets that answer.
    for o in &outcomes {
        assert_eq!(o.content(), said("collect three"));
        assert_eq!(
            o.streamed_text(),
            said("collect three"),
            "each requester follows the combined run's stream"
        );
        assert_eq!(
            o.result()["usage"],
            outcomes[0].result()["usage"],
            "one run, one usage"
        );
        assert_ne!(o.result()["steered"], json!(true));
    }
    let h = history(&mut a, s).await;
    let expected: Vec<(String, String)> = [
        ("user", HOLD_MESSAGE.to_owned()),
        ("assistant", HELD_REPLY.to_owned()),
        ("user", texts[0].to_owned()),
        ("user", texts[1].to_owned()),
        ("user", texts[2].to_owned()),
        ("assistant", said("collect three")),
    ]
    .into_iter()
    .map(|(r, c)| (r.to_owned(), c))
    .collect();
    assert_eq!(h, expected, "three queued messages, one turn, one answer");
}

#[tokio::test]
async fn steer_injects_a_message_before_the_next_model_call() {
    let gw = TestGateway::start("[queue]\nmode = \"steer\"\ndebounce_ms = 0\n").await;
    let s = "ws:steer";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;

    // Two tool calls in one model turn; the run waits for approval of the first.
    let first = r#"steer me [[tool:shell.exec {"command":"echo one"}]] [[tool:shell.exec {"command":"touch two.marker"}]]"#;
    let held = hold_with(&mut a, s, first).await;
    let steer = b.send(s, "change of plan").await;
    b.barrier(s).await;
    release(&mut a, &held).await;

    let oa = a.outcome(held.id).await;
    let ob = b.outcome(steer).await;
    // The running tool finished, the one not yet started was skipped, and the next model call
    // answered the steered message.
    let ends = oa.named("tool_end");
    assert_eq!(ends.len(), 2, "{:?}", oa.event_values());
    assert_eq!(ends[0].data()["result"]["success"], json!(true));
    assert_eq!(ends[0].data()["result"]["output"], json!("one\n"));
    assert_eq!(ends[1].data()["result"]["success"], json!(false));
    let skipped = ends[1].data()["result"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        skipped.starts_with("skipped"),
        "the unstarted tool call must be skipped: {skipped}"
    );
    assert!(
        !gw.data_dir().join("workspace/two.marker").exists(),
        "the skipped tool must not run"
    );

    assert_eq!(oa.content(), said("change of plan"));
    assert_ne!(oa.result()["steered"], json!(true));
    assert_eq!(
        ob.content(),
        said("change of plan"),
        "the steered request gets the run's reply"
    );
    assert_eq!(ob.result()["steered"], json!(true));
    assert!(
        ob.first("done").is_some() && !ob.named("content").is_empty(),
        "the steered requester follows the run"
    );

    let h = history(&mut a, s).await;
    assert_eq!(
        h,
        vec![
            ("user".to_owned(), first.to_owned()),
            ("user".to_owned(), "change of plan".to_owned()),
            ("assistant".to_owned(), said("change of plan")),
        ]
    );
}

#[tokio::test]
async fn steer_falls_back_to_followup_when_the_run_can_no_longer_take_it() {
    // With one model call per run, a run that is executing its tool makes no further model call,
    // so a message steered in then can never reach the model in that run: it must fall back to
    // followup (the README's "Queue modes": a run that cannot take it falls back to followup).
    let gw = TestGateway::start(
        "[queue]\nmode = \"steer\"\ndebounce_ms = 0\n\n[agent]\nmax_iterations = 1\n",
    )
    .await;
    let s = "ws:steer-late";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;

    let held = hold(&mut a, s).await;
    let late = b.send(s, "too late for that run").await;
    b.barrier(s).await;
    release(&mut a, &held).await;

    let oa = a.outcome(held.id).await;
    assert!(oa.content().contains("max_iterations"), "{}", oa.content());
    let ob = b.outcome(late).await;
    assert_ne!(
        ob.result()["steered"],
        json!(true),
        "a message the run never passed to the model was reported as steered: {}",
        ob.reply.value
    );
    assert_eq!(
        ob.content(),
        said("too late for that run"),
        "the fallback turn answers the message"
    );
    let h = history(&mut a, s).await;
    assert!(
        h.contains(&("user".to_owned(), "too late for that run".to_owned())),
        "the message must reach the history: {h:?}"
    );
}

#[tokio::test]
async fn steer_backlog_steers_the_run_and_also_queues_a_followup_turn() {
    let gw = TestGateway::start("[queue]\nmode = \"steer_backlog\"\ndebounce_ms = 0\n").await;
    let s = "ws:backlog";
    // One connection for both requests: its frames arrive in the order the gateway wrote them,
    // so which turn ended first is read from that order, not from arrival times on two sockets.
    let mut a = Conn::connect(&gw, "a").await;

    let held = hold(&mut a, s).await;
    let note = a.send(s, "backlog note").await;
    a.barrier(s).await;
    release(&mut a, &held).await;

    let oa = a.outcome(held.id).await;
    let ob = a.outcome(note).await;
    assert_eq!(
        oa.content(),
        said("backlog note"),
        "the active run took the steered message"
    );
    assert_eq!(
        ob.content(),
        said("backlog note"),
        "the followup turn answered it too"
    );
    assert_ne!(
        ob.result()["steered"],
        json!(true),
        "the reply comes from the request's own followup turn"
    );
    let terminal = |o: &Outcome| {
        o.events
            .iter()
            .find(|f| matches!(f.event(), Some("done" | "error")))
            .map_or(o.reply.index, |f| f.index)
    };
    assert!(
        terminal(&ob) > terminal(&oa),
        "the followup turn ended after the steered run"
    );
    let h = history(&mut a, s).await;
    let answers: Vec<&str> = h
        .iter()
        .filter(|(r, _)| r == "assistant")
        .map(|(_, c)| c.as_str())
        .collect();
    assert_eq!(
        answers,
        vec![said("backlog note"), said("backlog note")],
        "{h:?}"
    );
    let first_answer = h.iter().position(|(r, _)| r == "assistant").unwrap_or(0);
    assert!(
        h[..first_answer].contains(&("user".to_owned(), "backlog note".to_owned())),
        "the note was steered into the first run: {h:?}"
    );
}

#[tokio::test]
async fn interrupt_preempts_the_active_run_and_supersedes_older_queued_messages() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:interrupt";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let mut c = Conn::connect(&gw, "c").await;
    let mut d = Conn::connect(&gw, "d").await;

    let held = hold(&mut a, s).await;
    let old1 = b.send(s, "old one").await;
    b.barrier(s).await;
    let old2 = c.send(s, "old two").await;
    c.barrier(s).await;
    let set = a.send(s, "/queue set interrupt").await;
    a.outcome(set).await.result();
    let newest = d.send(s, "newest wins").await;

    let od = d.outcome(newest).await;
    let oa = a.outcome(held.id).await;
    let o1 = b.outcome(old1).await;
    let o2 = c.outcome(old2).await;

    // The newest runs, after a transient notice.
    assert_eq!(od.content(), said("newest wins"));
    let notice = od.events.first().expect("events of the newest request");
    assert_eq!(notice.event(), Some("content"));
    assert_eq!(notice.data()["transient"], json!(true), "{}", notice.value);
    assert!(
        !notice.data()["text"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        od.streamed_text(),
        said("newest wins"),
        "the transient notice is not part of the answer"
    );

    // The active run was preempted.
    assert_eq!(oa.error()["code"], json!(3), "{}", oa.reply.value);
    assert_eq!(event_code(&oa), 3);
    // The active run was superseded by the same decision (spec QueueRejection.code).
    assert_eq!(event_queue(&oa)["code"], json!("superseded"));
    assert_eq!(event_queue(&oa)["droppedCount"], json!(3));
    assert_eq!(event_queue(&oa)["laneId"], json!(s));
    assert_eq!(reply_queue(&oa)["code"], json!("superseded"));

    // Older queued messages were superseded, never run.
    for o in [&o1, &o2] {
        assert_eq!(o.error()["code"], json!(3), "{}", o.reply.value);
        assert_eq!(event_code(o), 3);
        let q = event_queue(o);
        assert_eq!(q["code"], json!("superseded"));
        assert_eq!(q["laneId"], json!(s));
        assert_eq!(q["mode"], json!("interrupt"));
        assert_eq!(q["overflow"], json!("drop_old"));
        assert_eq!(
            reply_queue(o),
            q,
            "the error response carries the same data.queue"
        );
        assert!(
            o.named("content").is_empty(),
            "a superseded request never ran"
        );
    }
    let h = history(&mut a, s).await;
    assert!(
        !h.iter().any(|(_, c)| c == "old one" || c == "old two"),
        "{h:?}"
    );

    let audit = audit_entries(&gw, "queue.preempt").await;
    assert!(
        audit
            .iter()
            .any(|(session, _)| session.as_deref() == Some(s)),
        "queue.preempt must be audited for {s}: {audit:?}"
    );

    // One interrupt decision dropped both queued requests and the active run: droppedCount
    // counts "the requests dropped by this one decision, this request included" (spec).
    assert_eq!(event_queue(&o1)["droppedCount"], json!(3));
    assert_eq!(event_queue(&o2)["droppedCount"], json!(3));
}

/// Queues `dropped` then `kept` behind a held run on `s`; returns the outcomes of the held run
/// and of both messages (the rejection arrives while the run is still held).
async fn overflow_scenario(
    gw: &TestGateway,
    s: &str,
    first: &str,
    second: &str,
) -> (Outcome, Outcome, Outcome) {
    let mut a = Conn::connect(gw, "a").await;
    let mut b = Conn::connect(gw, "b").await;
    let mut c = Conn::connect(gw, "c").await;
    let held = hold(&mut a, s).await;
    let id1 = b.send(s, first).await;
    b.barrier(s).await;
    let id2 = c.send(s, second).await;
    c.barrier(s).await;
    // Whichever was dropped is rejected while the run is still held.
    let rejected = tokio::select! {
        f = b.wait("a reply", |f| f.is_reply(id1)) => f,
        f = c.wait("a reply", |f| f.is_reply(id2)) => f,
    };
    assert!(
        rejected.value.get("error").is_some(),
        "the overflow rejection comes first: {}",
        rejected.value
    );
    release(&mut a, &held).await;
    let oa = a.outcome(held.id).await;
    let o1 = b.outcome(id1).await;
    let o2 = c.outcome(id2).await;
    (oa, o1, o2)
}

fn assert_overflow(o: &Outcome, s: &str, overflow: &str) {
    assert_eq!(o.error()["code"], json!(3), "{}", o.reply.value);
    assert_eq!(event_code(o), 3);
    let q = event_queue(o);
    assert_eq!(
        q,
        json!({ "code": "overflow", "laneId": s, "mode": "followup", "overflow": overflow, "droppedCount": 1 })
    );
    assert_eq!(
        reply_queue(o),
        q,
        "the error response carries the same data.queue"
    );
}

#[tokio::test]
async fn overflow_drop_old_rejects_the_oldest_and_summarizes_it_into_the_next_turn() {
    let gw = TestGateway::start("[queue]\ncap = 1\ndebounce_ms = 0\n").await;
    let dropped = format!(
        "please remember this dropped request {}",
        "with many details ".repeat(12)
    );

    let s1 = "ws:drop-old";
    let (oa, o1, o2) = overflow_scenario(&gw, s1, &dropped, "kept message").await;
    assert_eq!(oa.content(), HELD_REPLY);
    assert_overflow(&o1, s1, "drop_old");
    assert_eq!(o2.content(), said("kept message"));

    // Same exchange with summarizeOverflow off: the only difference in what the model receives
    // is the one-line summary of the dropped message, so the prompt is shorter by about it.
    let s2 = "ws:drop-old-nosummary";
    let mut cmd = Conn::connect(&gw, "cmd").await;
    let set = cmd.send(s2, "/queue set summarize=false").await;
    cmd.outcome(set).await.result();
    let (_, p1, p2) = overflow_scenario(&gw, s2, &dropped, "kept message").await;
    assert_overflow(&p1, s2, "drop_old");
    assert_eq!(p2.content(), said("kept message"));
    let with = o2.result()["usage"]["inputTokens"]
        .as_u64()
        .expect("inputTokens");
    let without = p2.result()["usage"]["inputTokens"]
        .as_u64()
        .expect("inputTokens");
    assert!(
        with >= without + 25,
        "the next turn's prompt must carry the dropped message's summary: {with} vs {without} input tokens"
    );
    let h = history(&mut cmd, s1).await;
    assert!(
        !h.iter().any(|(_, c)| c == &dropped),
        "a dropped message never ran: {h:?}"
    );
}

#[tokio::test]
async fn overflow_drop_new_rejects_the_newest_with_a_session_override() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:drop-new";
    let mut cmd = Conn::connect(&gw, "cmd").await;
    let set = cmd.send(s, "/queue set cap=1 overflow=drop_new").await;
    cmd.outcome(set).await.result();

    let (oa, o1, o2) = overflow_scenario(&gw, s, "queued first", "rejected newest").await;
    assert_eq!(oa.content(), HELD_REPLY);
    assert_eq!(o1.content(), said("queued first"));
    assert_overflow(&o2, s, "drop_new");
}

/// The quiet windows the debounce tests try, one after the other. A debounce is a wall-clock
/// behaviour: a queued turn is shown to wait for the window (and not merely for the lane to
/// free) only when the run ahead of it ended inside the window. That upper bound is the test's
/// precondition, not its assertion: an attempt where it does not hold (a loaded machine) is
/// inconclusive and the next, longer window is tried. Every attempt checks the lower bounds.
/// The windows add up to the liveness bound (63 s) against a lane that never frees in time.
const WINDOWS_MS: [u64; 6] = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000];

/// Runs `attempt` with each window of [`WINDOWS_MS`] until one is conclusive.
async fn with_growing_windows<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for window_ms in WINDOWS_MS {
        if attempt(window_ms).await {
            return;
        }
        eprintln!("{what}: the run ahead ended after the {window_ms} ms window; a longer one");
    }
    panic!("{what}: the run ahead never ended inside a quiet window of up to {WINDOWS_MS:?} ms");
}

#[tokio::test]
async fn debounce_holds_the_next_turn_until_the_queue_is_quiet() {
    with_growing_windows("debounce", debounce_attempt).await;
}

/// One attempt of the debounce test with `[queue] debounce_ms = window_ms`: two messages queue
/// behind a held run, the second restarting the window; the held run is released at once.
/// Returns whether the attempt was conclusive (the held run ended inside the window).
async fn debounce_attempt(window_ms: u64) -> bool {
    let window = Duration::from_millis(window_ms);
    let gw = TestGateway::start(&format!("[queue]\ndebounce_ms = {window_ms}\n")).await;
    let s = "ws:debounce";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let mut c = Conn::connect(&gw, "c").await;

    let held = hold(&mut a, s).await;
    let b1 = b.send(s, "after the quiet window").await;
    b.barrier(s).await;
    // Taken before the last message is sent: the window it starts cannot end earlier.
    let sent_last = Instant::now();
    let c1 = c.send(s, "restarts the window").await;
    c.barrier(s).await;
    release(&mut a, &held).await;

    let oa = a.outcome(held.id).await;
    let ob = b.outcome(b1).await;
    let oc = c.outcome(c1).await;
    assert_eq!(oa.content(), HELD_REPLY);
    assert_eq!(ob.content(), said("after the quiet window"));
    assert_eq!(oc.content(), said("restarts the window"));
    let waited = ob.started_at().duration_since(sent_last);
    assert!(
        waited >= window,
        "the queued turn started {waited:?} after the last message; debounceMs is {window:?}"
    );
    // c's turn after b's, proven by the stored order (see the FIFO test): arrival times on two
    // connections may come in either order.
    let stored = history(&mut c, s).await;
    let users: Vec<&str> = stored
        .iter()
        .filter(|(r, _)| r == "user")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(
        users,
        [
            HOLD_MESSAGE,
            "after the quiet window",
            "restarts the window"
        ]
    );
    let roles: Vec<&str> = stored.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant"
        ],
        "turns overlapped"
    );
    oa.terminal_at() < sent_last + window
}

/// `config.queue` of `session` in `sessions.list` (persisted sessions).
async fn listed_queue(conn: &mut Conn, session: &str) -> Value {
    let list = conn
        .ok("sessions.list", json!({ "includePersisted": true }))
        .await;
    list["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["id"] == json!(session)))
        .unwrap_or_else(|| panic!("{session} not listed: {list}"))["config"]["queue"]
        .clone()
}

async fn command(conn: &mut Conn, session: &str, text: &str) -> Outcome {
    let id = conn.send(session, text).await;
    conn.outcome(id).await
}

fn queue(mode: &str, cap: u64, overflow: &str, debounce: u64, summarize: bool) -> Value {
    json!({ "mode": mode, "cap": cap, "overflow": overflow, "debounceMs": debounce, "summarizeOverflow": summarize })
}

#[tokio::test]
async fn queue_commands_show_set_and_reset_the_session_policy() {
    let gw = TestGateway::start("").await;
    let s = "web:q";
    let mut a = Conn::connect(&gw, "a").await;

    let shown = command(&mut a, s, "/queue").await;
    assert!(
        shown
            .content()
            .contains("mode=followup cap=8 overflow=drop_old debounce=250ms summarize=true"),
        "{}",
        shown.content()
    );
    let set = command(
        &mut a,
        s,
        "/queue set collect cap=2 overflow=drop_new debounce=0",
    )
    .await;
    assert!(set.content().contains("mode=collect"), "{}", set.content());
    assert_eq!(
        listed_queue(&mut a, s).await,
        queue("collect", 2, "drop_new", 0, true)
    );

    // A second set changes only what it names.
    command(&mut a, s, "/queue set mode=steer_backlog summarize=false")
        .await
        .result();
    assert_eq!(
        listed_queue(&mut a, s).await,
        queue("steer_backlog", 2, "drop_new", 0, false)
    );
    let shown = command(&mut a, s, "/queue").await;
    assert!(
        shown
            .content()
            .contains("mode=steer_backlog cap=2 overflow=drop_new debounce=0ms summarize=false")
    );

    command(&mut a, s, "/queue reset").await.result();
    assert_eq!(
        listed_queue(&mut a, s).await,
        queue("followup", 8, "drop_old", 250, true)
    );

    for bad in [
        "/queue set mode=bogus",
        "/queue set cap=0",
        "/queue frobnicate",
    ] {
        let o = command(&mut a, s, bad).await;
        assert_eq!(o.error()["code"], json!(-2), "{bad}: {}", o.reply.value);
        assert!(
            o.events.is_empty(),
            "{bad}: a rejected command has no events"
        );
    }
    assert!(
        history(&mut a, s).await.is_empty(),
        "commands never reach the model or the history"
    );
    a.assert_seq_contiguous();
}

#[tokio::test]
async fn channel_overrides_apply_to_the_sessions_of_that_frontend() {
    let gw = TestGateway::start("[queue.channels.telegram]\nmode = \"collect\"\n").await;
    let mut a = Conn::connect(&gw, "a").await;
    a.ok("sessions.create", json!({ "sessionId": "telegram:7" }))
        .await;
    a.ok("sessions.create", json!({ "sessionId": "web:7" }))
        .await;
    assert_eq!(
        listed_queue(&mut a, "telegram:7").await["mode"],
        json!("collect")
    );
    assert_eq!(
        listed_queue(&mut a, "web:7").await["mode"],
        json!("followup")
    );

    assert!(
        command(&mut a, "telegram:7", "/queue")
            .await
            .content()
            .contains("mode=collect")
    );
    command(&mut a, "telegram:7", "/queue set steer")
        .await
        .result();
    assert_eq!(
        listed_queue(&mut a, "telegram:7").await["mode"],
        json!("steer")
    );
    // Reset returns to the channel's policy, not the global one.
    command(&mut a, "telegram:7", "/queue reset").await.result();
    assert_eq!(
        listed_queue(&mut a, "telegram:7").await["mode"],
        json!("collect")
    );
}

#[tokio::test]
async fn channel_overrides_keep_the_queue_defaults_they_do_not_name() {
    // `[queue.channels.telegram] mode = "collect"` overrides the mode only; cap and debounce
    // still come from `[queue]`.
    let gw = TestGateway::start(
        "[queue]\ncap = 3\ndebounce_ms = 0\n\n[queue.channels.telegram]\nmode = \"collect\"\n",
    )
    .await;
    let mut a = Conn::connect(&gw, "a").await;
    a.ok("sessions.create", json!({ "sessionId": "telegram:8" }))
        .await;
    a.ok("sessions.create", json!({ "sessionId": "web:8" }))
        .await;
    assert_eq!(
        listed_queue(&mut a, "web:8").await,
        queue("followup", 3, "drop_old", 0, true)
    );
    assert_eq!(
        listed_queue(&mut a, "telegram:8").await,
        queue("collect", 3, "drop_old", 0, true)
    );
}

#[tokio::test]
async fn stop_and_cancel_commands_act_like_agent_cancel_without_queueing() {
    let gw = TestGateway::start(FAST).await;
    let s = "ws:stop";
    let mut a = Conn::connect(&gw, "a").await;
    let mut b = Conn::connect(&gw, "b").await;
    let mut c = Conn::connect(&gw, "c").await;

    // The run is held until someone answers; /stop still answers at once (it is not queued).
    let held = hold(&mut a, s).await;
    let queued = b.send(s, "queued behind").await;
    b.barrier(s).await;
    let stop = command(&mut c, s, "/stop").await;
    assert!(
        stop.content().contains("Cancelled the active run"),
        "{}",
        stop.content()
    );
    assert!(stop.content().contains("1 queued"), "{}", stop.content());
    let oa = a.outcome(held.id).await;
    assert_eq!(oa.error()["code"], json!(4), "{}", oa.reply.value);
    assert_eq!(event_code(&oa), 4);
    let ob = b.outcome(queued).await;
    assert_eq!(ob.error()["code"], json!(4), "{}", ob.reply.value);
    assert_eq!(event_code(&ob), 4);

    let held = hold(&mut a, s).await;
    let cancel = command(&mut c, s, "/cancel").await;
    assert!(
        cancel.content().contains("Cancelled the active run"),
        "{}",
        cancel.content()
    );
    assert_eq!(a.outcome(held.id).await.error()["code"], json!(4));

    let idle = command(&mut c, s, "/stop").await;
    assert!(
        idle.content().contains("No run was active"),
        "{}",
        idle.content()
    );
    // The lane still works.
    let after = b.send(s, "after stopping").await;
    assert_eq!(b.outcome(after).await.content(), said("after stopping"));
    // The queued request rejected by /stop says why (spec: data.queue.code `cancelled`).
    assert_eq!(
        event_queue(&ob)["code"],
        json!("cancelled"),
        "{:?}",
        ob.event_values()
    );
}

#[tokio::test]
async fn a_queue_set_applies_to_a_lane_that_is_already_busy() {
    // The session's debounce changes while a run is active; the message queued after the change
    // must wait for the new quiet window (see `WINDOWS_MS` for why the window grows).
    let gw = TestGateway::start(FAST).await;
    let gw = &gw;
    with_growing_windows("reconfigured debounce", |window_ms| async move {
        let window = Duration::from_millis(window_ms);
        let s = &format!("ws:reconfigure-{window_ms}");
        let mut a = Conn::connect(gw, "a").await;
        let mut b = Conn::connect(gw, "b").await;

        let held = hold(&mut a, s).await;
        command(&mut b, s, &format!("/queue set debounce={window_ms}"))
            .await
            .result();
        let sent = Instant::now();
        let queued = b.send(s, "queued after the change").await;
        b.barrier(s).await;
        release(&mut a, &held).await;
        let oa = a.outcome(held.id).await;
        let ob = b.outcome(queued).await;
        assert_eq!(ob.content(), said("queued after the change"));
        let waited = ob.started_at().duration_since(sent);
        assert!(
            waited >= window,
            "the queued turn started {waited:?} after its message although the session's debounceMs is now {window:?}"
        );
        oa.terminal_at() < sent + window
    })
    .await;
}
