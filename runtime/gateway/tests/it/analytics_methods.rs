//! `system.sessionAnalytics` over a real WebSocket: history seeded through `agent.send` (the
//! embedded model answers each message, `[[tool:...]]` makes it call a tool), figures checked
//! exactly against what was sent.
//!
//! Each `agent.send` stores two messages (the user's and the answer); topics come from user
//! messages only, with the documented rule of `flynn_store::terms` (lowercase, split on
//! non-alphanumerics, 4-40 characters with a letter, no stop words, once per message), so the
//! tool directive's words (`tool`, `shell`, `exec`, `command`, `echo`) count too.
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json `system.sessionAnalytics`
//! (`topSessions[].lastActivity` in epoch SECONDS, `averageMessagesPerSession` =
//! totalMessages / totalSessions, days without messages omitted, each top list capped at
//! `topLimit`, highest first).

use crate::method_checks;
use crate::support;

use method_checks::{assert_invalid, call_ok, now_ms, stop};
use serde_json::{Value, json};
use support::{TestGateway, Ws};

const FAST_QUEUE: &str = "[queue]\ndebounce_ms = 0\n";
const TOOL: &str = r#"[[tool:shell.exec {"command":"echo hi"}]]"#;

/// The UTC day of an epoch-ms time, `YYYY-MM-DD`.
fn day(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .expect("valid time")
        .format("%Y-%m-%d")
        .to_string()
}

async fn send(ws: &mut Ws, session: &str, text: &str) -> Value {
    let id = ws
        .request("agent.send", json!({"sessionId": session, "message": text}))
        .await;
    let (events, reply) = ws.reply_to(id).await;
    assert!(reply.get("error").is_none(), "agent.send {text}: {reply}");
    if text.contains("[[tool:") {
        let ends: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == json!("tool_end"))
            .collect();
        assert_eq!(ends.len(), 1, "one tool call per directive: {events:?}");
        assert_eq!(
            ends[0]["data"]["result"]["success"],
            json!(true),
            "{events:?}"
        );
    }
    reply["result"].clone()
}

/// 7 sends (14 messages) over 3 sessions, 2 of them with a shell.exec call.
async fn seed(ws: &mut Ws) {
    for text in [
        "kubernetes cluster upgrade",
        "kubernetes pods crashing",
        "kubernetes ingress broken",
        "kubernetes nodes draining",
    ] {
        send(ws, "telegram:100", text).await;
    }
    send(ws, "telegram:200", "terraform state drift").await;
    send(ws, "telegram:200", &format!("terraform plan {TOOL}")).await;
    send(
        ws,
        "slack:300",
        &format!("kubernetes terraform migration {TOOL}"),
    )
    .await;
}

fn topic(name: &str, n: u64) -> Value {
    json!({"topic": name, "occurrences": n})
}

#[tokio::test]
async fn figures_match_the_seeded_history_exactly() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    let empty = call_ok(&mut ws, "system.sessionAnalytics", json!({})).await;
    assert_eq!(
        empty,
        json!({"daily": [], "topSessions": [], "topTools": [], "topTopics": [],
               "averageMessagesPerSession": 0.0, "totalSessions": 0, "totalMessages": 0})
    );

    let t0 = now_ms();
    seed(&mut ws).await;
    let t1 = now_ms();
    let a = call_ok(&mut ws, "system.sessionAnalytics", json!({})).await;

    if day(t0) == day(t1) {
        assert_eq!(
            a["daily"],
            json!([{"day": day(t1), "sessions": 3, "messages": 14}]),
            "{a}"
        );
    }
    assert_eq!(a["totalSessions"], json!(3), "{a}");
    assert_eq!(a["totalMessages"], json!(14), "{a}");
    let average = a["averageMessagesPerSession"].as_f64().expect("a number");
    assert!(
        (average - 14.0 / 3.0).abs() < 0.005,
        "average 14/3, got {average}"
    );

    let sessions = a["topSessions"].as_array().expect("topSessions");
    let ranked: Vec<(&Value, &Value)> = sessions
        .iter()
        .map(|s| (&s["sessionId"], &s["messages"]))
        .collect();
    assert_eq!(
        ranked,
        [
            (&json!("telegram:100"), &json!(8)),
            (&json!("telegram:200"), &json!(4)),
            (&json!("slack:300"), &json!(2)),
        ]
    );
    for s in sessions {
        let last = s["lastActivity"].as_u64().expect("lastActivity");
        assert!(
            t0 / 1000 <= last && last <= t1 / 1000,
            "lastActivity is epoch SECONDS within the run ({}..{}): {s}",
            t0 / 1000,
            t1 / 1000
        );
    }
    // The sessions were written in order, so their last activity is ordered too.
    let last: Vec<u64> = sessions
        .iter()
        .map(|s| s["lastActivity"].as_u64().unwrap())
        .collect();
    assert!(last[0] <= last[1] && last[1] <= last[2], "{last:?}");

    assert_eq!(
        a["topTools"],
        json!([{"toolName": "shell.exec", "executions": 2}])
    );
    assert_eq!(
        a["topTopics"],
        json!([
            topic("kubernetes", 5),
            topic("terraform", 3),
            topic("command", 2),
            topic("echo", 2),
            topic("exec", 2),
            topic("shell", 2),
            topic("tool", 2),
            topic("broken", 1),
            topic("cluster", 1),
            topic("crashing", 1),
        ]),
        "by occurrences, then alphabetically, capped at the default topLimit 10"
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn top_limit_caps_every_list_but_not_the_totals() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    seed(&mut ws).await;
    let a = call_ok(
        &mut ws,
        "system.sessionAnalytics",
        json!({"days": 1, "topLimit": 1}),
    )
    .await;
    assert_eq!(a["topSessions"].as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a["topSessions"][0]["sessionId"], json!("telegram:100"));
    assert_eq!(a["topTools"].as_array().unwrap().len(), 1);
    assert_eq!(a["topTopics"], json!([topic("kubernetes", 5)]));
    assert_eq!(a["totalSessions"], json!(3));
    assert_eq!(a["totalMessages"], json!(14));
    let two = call_ok(&mut ws, "system.sessionAnalytics", json!({"topLimit": 2})).await;
    assert_eq!(
        two["topTopics"],
        json!([topic("kubernetes", 5), topic("terraform", 3)])
    );
    assert_eq!(two["topSessions"].as_array().unwrap().len(), 2);
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn days_bounds_the_window() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    send(&mut ws, "telegram:100", "kubernetes today").await;
    // A conversation 40 days ago, written into the gateway's store (the wire cannot backdate).
    let store = &gw.running.as_ref().expect("running").gateway.store;
    let old = now_ms() as i64 - 40 * 86_400_000;
    for (role, text) in [
        (flynn_store::Role::User, "archived postgres question"),
        (flynn_store::Role::Assistant, "an old answer"),
    ] {
        store
            .append_message(flynn_store::NewMessage {
                session_id: "telegram:old".to_owned(),
                role,
                content: text.to_owned(),
                attachments: None,
                created_at_ms: old,
            })
            .await
            .expect("seed an old message");
    }

    let month = call_ok(&mut ws, "system.sessionAnalytics", json!({"days": 30})).await;
    assert_eq!(month["totalSessions"], json!(1), "{month}");
    assert_eq!(month["totalMessages"], json!(2));
    assert_eq!(month["daily"].as_array().unwrap().len(), 1);
    assert!(
        !month.to_string().contains("postgres"),
        "40 days ago is outside 30 days: {month}"
    );

    let longer = call_ok(&mut ws, "system.sessionAnalytics", json!({"days": 60})).await;
    assert_eq!(longer["totalSessions"], json!(2), "{longer}");
    assert_eq!(longer["totalMessages"], json!(4));
    let days: Vec<&Value> = longer["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["day"])
        .collect();
    assert_eq!(
        days,
        [&json!(day(old as u64)), &json!(day(now_ms()))],
        "one entry per day with messages, oldest first, days without messages omitted"
    );
    assert_eq!(
        longer["daily"][0],
        json!({"day": day(old as u64), "sessions": 1, "messages": 2})
    );
    let topics: Vec<&Value> = longer["topTopics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["topic"])
        .collect();
    assert!(topics.contains(&&json!("postgres")), "{longer}");
    assert!(
        (longer["averageMessagesPerSession"].as_f64().unwrap() - 2.0).abs() < 1e-9,
        "{longer}"
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn out_of_range_params_are_invalid_request() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for (params, path) in [
        (json!({"days": 0}), "params.days"),
        (json!({"topLimit": 0}), "params.topLimit"),
        (json!({"days": "7"}), "params.days"),
        (json!({"top": 3}), "params.top"),
        // Spec: `days` 1..365, `topLimit` 1..100.
        (json!({"days": 366}), "params.days"),
        (json!({"topLimit": 101}), "params.topLimit"),
    ] {
        let reply = ws.call("system.sessionAnalytics", params.clone()).await;
        assert_invalid(&reply, path, &format!("system.sessionAnalytics {params}"));
    }
    stop(gw, [ws]).await;
}
