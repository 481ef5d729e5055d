//! `system.sessionAnalytics` handled in process (`TestGateway::in_process`: the gateway's own
//! dispatch without a socket; the transport has its own tests) through the generated typed
//! client: history seeded through `agent.send` (the embedded model answers each message,
//! `[[tool:...]]` makes it call a tool), figures checked exactly against what was sent. The
//! params the types cannot express stay raw.
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
use crate::support::sid;

use std::num::NonZeroU64;

use flynn_protocol::Event;
use flynn_protocol::types::{
    self, SessionAnalyticsDay, SessionAnalyticsTopTool, SessionAnalyticsTopTopic,
    SystemSessionAnalyticsParams, SystemSessionAnalyticsResult,
};
use method_checks::{assert_invalid, now_ms};
use serde_json::json;
use support::{InProcessClient, TestGateway};

const FAST_QUEUE: &str = "[queue]\ndebounce_ms = 0\n";
const TOOL: &str = r#"[[tool:shell.exec {"command":"echo hi"}]]"#;

/// The UTC day of an epoch-ms time, `YYYY-MM-DD`.
fn day(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .expect("valid time")
        .format("%Y-%m-%d")
        .to_string()
}

async fn send(client: &InProcessClient, session: &str, text: &str) -> types::AgentSendResult {
    let mut call = client
        .agent_send_streaming(types::AgentSendParams {
            session_id: Some(sid(session)),
            message: text.to_owned(),
            attachments: Vec::new(),
            idempotency_key: None,
            session: None,
        })
        .await
        .unwrap_or_else(|e| panic!("agent.send {text}: {e}"));
    let mut events = Vec::new();
    while let Some(event) = call.next_event().await {
        events.push(
            event
                .unwrap_or_else(|e| panic!("agent.send {text}: an event: {e}"))
                .0,
        );
    }
    let reply = call
        .finish()
        .await
        .unwrap_or_else(|e| panic!("agent.send {text}: {e}"));
    if text.contains("[[tool:") {
        let ends: Vec<&types::ToolEndEventData> = events
            .iter()
            .filter_map(|e| match e {
                Event::ToolEnd(end) => Some(end),
                _ => None,
            })
            .collect();
        assert_eq!(ends.len(), 1, "one tool call per directive: {events:?}");
        assert!(ends[0].result.success, "{events:?}");
    }
    reply
}

/// 7 sends (14 messages) over 3 sessions, 2 of them with a shell.exec call.
async fn seed(client: &InProcessClient) {
    for text in [
        "kubernetes cluster upgrade",
        "kubernetes pods crashing",
        "kubernetes ingress broken",
        "kubernetes nodes draining",
    ] {
        send(client, "telegram:100", text).await;
    }
    send(client, "telegram:200", "terraform state drift").await;
    send(client, "telegram:200", &format!("terraform plan {TOOL}")).await;
    send(
        client,
        "slack:300",
        &format!("kubernetes terraform migration {TOOL}"),
    )
    .await;
}

fn topic(name: &str, n: u64) -> SessionAnalyticsTopTopic {
    SessionAnalyticsTopTopic {
        topic: name.to_owned(),
        occurrences: n,
    }
}

fn days(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).expect("days above 0")
}

async fn analytics(
    client: &InProcessClient,
    params: SystemSessionAnalyticsParams,
) -> SystemSessionAnalyticsResult {
    client
        .system_session_analytics(params.clone())
        .await
        .unwrap_or_else(|e| panic!("system.sessionAnalytics {params:?}: {e}"))
}

#[tokio::test]
async fn figures_match_the_seeded_history_exactly() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    let empty = analytics(&client, Default::default()).await;
    assert_eq!(
        empty,
        SystemSessionAnalyticsResult {
            daily: vec![],
            top_sessions: vec![],
            top_tools: vec![],
            top_topics: vec![],
            average_messages_per_session: 0.0,
            total_sessions: 0,
            total_messages: 0,
        }
    );

    let t0 = now_ms();
    seed(&client).await;
    let t1 = now_ms();
    let a = analytics(&client, Default::default()).await;

    if day(t0) == day(t1) {
        assert_eq!(
            a.daily,
            [SessionAnalyticsDay {
                day: day(t1),
                sessions: 3,
                messages: 14
            }],
            "{a:?}"
        );
    }
    assert_eq!(a.total_sessions, 3, "{a:?}");
    assert_eq!(a.total_messages, 14, "{a:?}");
    let average = a.average_messages_per_session;
    assert!(
        (average - 14.0 / 3.0).abs() < 0.005,
        "average 14/3, got {average}"
    );

    let sessions = &a.top_sessions;
    let ranked: Vec<(&str, u64)> = sessions
        .iter()
        .map(|s| (s.session_id.as_str(), s.messages))
        .collect();
    assert_eq!(
        ranked,
        [("telegram:100", 8), ("telegram:200", 4), ("slack:300", 2)]
    );
    for s in sessions {
        let last = s.last_activity;
        assert!(
            t0 / 1000 <= last && last <= t1 / 1000,
            "lastActivity is epoch SECONDS within the run ({}..{}): {s:?}",
            t0 / 1000,
            t1 / 1000
        );
    }
    // The sessions were written in order, so their last activity is ordered too.
    let last: Vec<u64> = sessions.iter().map(|s| s.last_activity).collect();
    assert!(last[0] <= last[1] && last[1] <= last[2], "{last:?}");

    assert_eq!(
        a.top_tools,
        [SessionAnalyticsTopTool {
            tool_name: "shell.exec".into(),
            executions: 2
        }]
    );
    assert_eq!(
        a.top_topics,
        [
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
        ],
        "by occurrences, then alphabetically, capped at the default topLimit 10"
    );
    gw.stop().await;
}

#[tokio::test]
async fn top_limit_caps_every_list_but_not_the_totals() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    seed(&client).await;
    let a = analytics(
        &client,
        SystemSessionAnalyticsParams {
            days: days(1),
            top_limit: days(1),
        },
    )
    .await;
    assert_eq!(a.top_sessions.len(), 1, "{a:?}");
    assert_eq!(a.top_sessions[0].session_id, "telegram:100");
    assert_eq!(a.top_tools.len(), 1);
    assert_eq!(a.top_topics, [topic("kubernetes", 5)]);
    assert_eq!(a.total_sessions, 3);
    assert_eq!(a.total_messages, 14);
    let two = analytics(
        &client,
        SystemSessionAnalyticsParams {
            top_limit: days(2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        two.top_topics,
        [topic("kubernetes", 5), topic("terraform", 3)]
    );
    assert_eq!(two.top_sessions.len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn days_bounds_the_window() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    send(&client, "telegram:100", "kubernetes today").await;
    // A conversation 40 days ago, written into the gateway's store (the wire cannot backdate).
    let store = &gw.gateway().store;
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

    let month = analytics(
        &client,
        SystemSessionAnalyticsParams {
            days: days(30),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(month.total_sessions, 1, "{month:?}");
    assert_eq!(month.total_messages, 2);
    assert_eq!(month.daily.len(), 1);
    assert!(
        !serde_json::to_string(&month)
            .expect("the result serializes")
            .contains("postgres"),
        "40 days ago is outside 30 days: {month:?}"
    );

    let longer = analytics(
        &client,
        SystemSessionAnalyticsParams {
            days: days(60),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(longer.total_sessions, 2, "{longer:?}");
    assert_eq!(longer.total_messages, 4);
    let listed: Vec<&str> = longer.daily.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(
        listed,
        [day(old as u64), day(now_ms())],
        "one entry per day with messages, oldest first, days without messages omitted"
    );
    assert_eq!(
        longer.daily[0],
        SessionAnalyticsDay {
            day: day(old as u64),
            sessions: 1,
            messages: 2
        }
    );
    let topics: Vec<&str> = longer.top_topics.iter().map(|t| t.topic.as_str()).collect();
    assert!(topics.contains(&"postgres"), "{longer:?}");
    assert!(
        (longer.average_messages_per_session - 2.0).abs() < 1e-9,
        "{longer:?}"
    );
    gw.stop().await;
}

/// Params the typed client cannot send, so raw; answered by the same dispatch the socket uses.
#[tokio::test]
async fn out_of_range_params_are_invalid_request() {
    let gw = TestGateway::start("").await;
    let client = gw.in_process();
    for (params, path) in [
        (json!({"days": 0}), "params.days"),
        (json!({"topLimit": 0}), "params.topLimit"),
        (json!({"days": "7"}), "params.days"),
        (json!({"top": 3}), "params.top"),
        // Spec: `days` 1..365, `topLimit` 1..100.
        (json!({"days": 366}), "params.days"),
        (json!({"topLimit": 101}), "params.topLimit"),
    ] {
        let reply = client.raw("system.sessionAnalytics", params.clone()).await;
        assert_invalid(&reply, path, &format!("system.sessionAnalytics {params}"));
    }
    gw.stop().await;
}
