//! `GET /metrics`: the Prometheus text format behind the token (like `/api/*`), with the
//! request, event, turn, token and auth-failure counters moving as a client uses the gateway.

use crate::support;

use crate::support::raw_http;

use raw_http::http_get;
use serde_json::json;
use support::{TestGateway, Ws};

const TOKEN: &str = "metrics-check-token-123";

/// The value of the sample `name` (with its labels, as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_need_the_token_and_count_what_happens() {
    // `flynn_connections` counts this process's connections: alone, they are this test's.
    if !support::alone::in_own_process(
        module_path!(),
        "metrics_need_the_token_and_count_what_happens",
    )
    .await
    {
        return;
    }
    let gw = TestGateway::start(&format!("token = \"{TOKEN}\"")).await;
    let bearer = format!("Bearer {TOKEN}");

    let refused = http_get(gw.addr, "/metrics", &[]).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.json()["error"]["code"], -4);

    let mut ws = Ws::connect(&gw.url(), &[("Authorization", bearer.as_str())])
        .await
        .expect("websocket connects with the token");
    let reply = ws
        .call(
            "agent.send",
            json!({ "sessionId": "metrics:1", "message": "hello metrics" }),
        )
        .await;
    assert!(reply.get("result").is_some(), "{reply}");

    let reply = http_get(gw.addr, "/metrics", &[("Authorization", bearer.as_str())]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
        "{reply:?}"
    );
    let text = &reply.body;
    assert!(text.contains("# TYPE flynn_requests counter"), "{text}");
    assert!(
        text.contains("# TYPE flynn_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(sample(text, "flynn_connections"), Some(1.0), "{text}");
    // No message is being received: nothing of the inbound budget is held.
    assert_eq!(sample(text, "flynn_inbound_bytes"), Some(0.0), "{text}");
    let sent = sample(
        text,
        "flynn_requests_total{method=\"agent.send\",outcome=\"ok\"}",
    );
    assert!(sent.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        sample(
            text,
            "flynn_request_duration_seconds_count{method=\"agent.send\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(text, "flynn_events_sent_total{event=\"done\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(text, "flynn_agent_turns_total{outcome=\"ok\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(text, "flynn_agent_turn_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(text, "flynn_model_tokens_total{direction=\"output\"}").is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert!(
        sample(text, "flynn_auth_failures_total{transport=\"http\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    for mode in ["followup", "collect", "steer", "steer_backlog", "interrupt"] {
        assert!(
            sample(text, &format!("flynn_queue_depth{{mode=\"{mode}\"}}")).is_some(),
            "{mode}: {text}"
        );
    }
    assert!(!text.contains(TOKEN));
}

#[tokio::test]
async fn metrics_are_open_without_a_token_configured() {
    let gw = TestGateway::start("").await;
    let reply = http_get(gw.addr, "/metrics", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("flynn_connections"), "{}", reply.body);
}

/// A long answer streams one `content` event per model chunk, and the embedded model yields to
/// the scheduler between chunks (as a network stream would). The connection gathers the events
/// that arrive while other tasks run and writes them together: far fewer socket writes
/// (`flynn_event_writes_total`) than events. With one write per event this fails.
#[tokio::test]
async fn a_streamed_answer_leaves_in_fewer_writes_than_events() {
    // The counters are the process's: alone, they are this test's.
    if !support::alone::in_own_process(
        module_path!(),
        "a_streamed_answer_leaves_in_fewer_writes_than_events",
    )
    .await
    {
        return;
    }
    let gw = TestGateway::start("").await;
    let mut ws = Ws::connect(&gw.url(), &[])
        .await
        .expect("websocket connects");
    let id = ws
        .request(
            "agent.send",
            json!({ "sessionId": "coalesce:1", "message": "[[long:600]]" }),
        )
        .await;
    let (events, reply) = ws.reply_to(id).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let content = events.iter().filter(|e| e["event"] == "content").count();
    // 600 words, three per chunk.
    assert!(content >= 200, "{content} content events: {events:?}");

    let text = http_get(gw.addr, "/metrics", &[]).await.body;
    let sent = sample(&text, "flynn_events_sent_total{event=\"content\"}");
    assert_eq!(sent, Some(content as f64), "{text}");
    let writes = sample(&text, "flynn_event_writes_total").expect("the writes counter");
    assert!(writes >= 1.0, "{text}");
    assert!(
        writes * 4.0 <= content as f64,
        "{content} content events left in {writes} writes: not coalesced"
    );
}
