//! `system.presence` over a real WebSocket: senders are driven in through `agent.send` on
//! channel sessions (`telegram:123` = channel `telegram`, sender `123`) and tracked in the
//! SQLite store with first/last seen and message counts; online/offline comes from
//! `[presence] online_threshold_seconds`.
//!
//! Online/offline is checked without fixed sleeps: a threshold so large that every sender is
//! online, a threshold of 0 after the clock has passed the last sighting (everything is then
//! offline), and, for a mix, a sender written into the store as seen an hour ago (the wire has
//! no way to backdate a message).
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json `system.presence` (ordered by
//! `lastSeenAt` descending, filters combine with AND, `summary` counts every sender matching
//! `channel` regardless of `status` and `limit`).

use crate::method_checks;
use crate::support;

use method_checks::{assert_invalid, call_ok, now_ms, stop, wait_past};
use serde_json::{Value, json};
use support::{TestGateway, Ws};

/// No debounce, so each `agent.send` runs at once.
const FAST_QUEUE: &str = "[queue]\ndebounce_ms = 0\n";

async fn send(ws: &mut Ws, session: &str, text: &str) {
    call_ok(
        ws,
        "agent.send",
        json!({"sessionId": session, "message": text}),
    )
    .await;
}

/// `(channel, senderId)` of each entry, in order.
fn who(result: &Value) -> Vec<(String, String)> {
    result["presence"]
        .as_array()
        .unwrap_or_else(|| panic!("system.presence has `presence`: {result}"))
        .iter()
        .map(|e| {
            (
                e["channel"].as_str().expect("channel").to_owned(),
                e["senderId"].as_str().expect("senderId").to_owned(),
            )
        })
        .collect()
}

fn pair(channel: &str, sender: &str) -> (String, String) {
    (channel.to_owned(), sender.to_owned())
}

fn entry<'a>(result: &'a Value, channel: &str, sender: &str) -> &'a Value {
    result["presence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["channel"] == json!(channel) && e["senderId"] == json!(sender))
        .unwrap_or_else(|| panic!("{channel}:{sender} listed: {result}"))
}

/// Sends from telegram:123 (twice), telegram:456 and slack:U42, each strictly later than the
/// one before, and returns the time window they happened in.
async fn drive_senders(ws: &mut Ws, gw: &TestGateway) -> (u64, u64) {
    let t0 = now_ms();
    let mut last = t0;
    for (session, text) in [
        ("telegram:123", "first message"),
        ("telegram:123", "second message"),
        ("telegram:456", "hi from 456"),
        ("slack:U42", "hi from slack"),
    ] {
        wait_past(last).await;
        send(ws, session, text).await;
        let seen = latest_sighting(gw).await;
        assert!(seen > last, "each message is a later sighting");
        last = seen;
    }
    (t0, now_ms())
}

/// The newest `lastSeenAt` stored (read through the gateway's own store).
async fn latest_sighting(gw: &TestGateway) -> u64 {
    let store = &gw.running.as_ref().expect("running").gateway.store;
    let records = store.presence(None, 1).await.expect("presence query");
    records.first().map_or(0, |r| r.last_seen_ms as u64)
}

/// Writes a sender last seen an hour ago straight into the gateway's store.
async fn seed_old_sender(gw: &TestGateway) -> u64 {
    let store = &gw.running.as_ref().expect("running").gateway.store;
    let an_hour_ago = now_ms() - 3_600_000;
    store
        .record_presence("telegram", "999", Some("old bob"), an_hour_ago as i64)
        .await
        .expect("seed presence");
    an_hour_ago
}

#[tokio::test]
async fn senders_are_tracked_with_first_and_last_seen_and_counts() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    let empty = call_ok(&mut ws, "system.presence", json!({})).await;
    assert_eq!(
        empty,
        json!({"presence": [], "summary": {"total": 0, "online": 0, "offline": 0}})
    );

    let (t0, t1) = drive_senders(&mut ws, &gw).await;
    let all = call_ok(&mut ws, "system.presence", json!({})).await;
    assert_eq!(
        who(&all),
        [
            pair("slack", "U42"),
            pair("telegram", "456"),
            pair("telegram", "123")
        ],
        "most recently seen first: {all}"
    );
    let alice = entry(&all, "telegram", "123");
    let first = alice["firstSeenAt"].as_u64().expect("firstSeenAt ms");
    let last = alice["lastSeenAt"].as_u64().expect("lastSeenAt ms");
    assert!(
        t0 <= first && first < last && last <= t1,
        "{t0} <= {first} < {last} <= {t1}"
    );
    assert_eq!(alice["messageCount"], json!(2));
    assert_eq!(alice["status"], json!("online"));
    for (channel, sender) in [("telegram", "456"), ("slack", "U42")] {
        let e = entry(&all, channel, sender);
        assert_eq!(e["messageCount"], json!(1), "{e}");
        assert_eq!(e["firstSeenAt"], e["lastSeenAt"], "{e}");
        assert_eq!(e["status"], json!("online"), "{e}");
        assert!(e["lastSeenAt"].as_u64().unwrap() > last, "{e}");
    }
    assert_eq!(
        all["summary"],
        json!({"total": 3, "online": 3, "offline": 0})
    );

    stop(gw, [ws]).await;
}

#[tokio::test]
async fn filters_combine_and_summary_ignores_status_and_limit() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    drive_senders(&mut ws, &gw).await;
    let old_seen = seed_old_sender(&gw).await;

    let all = call_ok(&mut ws, "system.presence", json!({})).await;
    assert_eq!(
        who(&all),
        [
            pair("slack", "U42"),
            pair("telegram", "456"),
            pair("telegram", "123"),
            pair("telegram", "999")
        ]
    );
    let bob = entry(&all, "telegram", "999");
    assert_eq!(
        bob["status"],
        json!("offline"),
        "seen an hour ago, threshold 300 s"
    );
    assert_eq!(bob["senderName"], json!("old bob"));
    assert_eq!(bob["lastSeenAt"], json!(old_seen));
    assert_eq!(
        all["summary"],
        json!({"total": 4, "online": 3, "offline": 1})
    );

    let online = call_ok(&mut ws, "system.presence", json!({"status": "online"})).await;
    assert_eq!(
        who(&online),
        [
            pair("slack", "U42"),
            pair("telegram", "456"),
            pair("telegram", "123")
        ]
    );
    assert_eq!(
        online["summary"], all["summary"],
        "summary ignores `status`"
    );
    let offline = call_ok(&mut ws, "system.presence", json!({"status": "offline"})).await;
    assert_eq!(who(&offline), [pair("telegram", "999")]);
    assert_eq!(offline["summary"], all["summary"]);

    let telegram = call_ok(&mut ws, "system.presence", json!({"channel": "telegram"})).await;
    assert_eq!(
        who(&telegram),
        [
            pair("telegram", "456"),
            pair("telegram", "123"),
            pair("telegram", "999")
        ]
    );
    assert_eq!(
        telegram["summary"],
        json!({"total": 3, "online": 2, "offline": 1}),
        "summary counts the senders of the channel"
    );
    let both = call_ok(
        &mut ws,
        "system.presence",
        json!({"channel": "telegram", "status": "online", "limit": 1}),
    )
    .await;
    assert_eq!(
        who(&both),
        [pair("telegram", "456")],
        "AND of the filters, then limit"
    );
    assert_eq!(
        both["summary"], telegram["summary"],
        "summary ignores status and limit"
    );

    let limited = call_ok(&mut ws, "system.presence", json!({"limit": 2})).await;
    assert_eq!(
        who(&limited),
        [pair("slack", "U42"), pair("telegram", "456")]
    );
    assert_eq!(limited["summary"], all["summary"]);
    let nobody = call_ok(&mut ws, "system.presence", json!({"channel": "discord"})).await;
    assert_eq!(
        nobody,
        json!({"presence": [], "summary": {"total": 0, "online": 0, "offline": 0}})
    );

    stop(gw, [ws]).await;
}

#[tokio::test]
async fn threshold_zero_makes_every_earlier_sighting_offline() {
    let gw = TestGateway::start(&format!(
        "{FAST_QUEUE}[presence]\nonline_threshold_seconds = 0\n"
    ))
    .await;
    let mut ws = gw.client().await;
    drive_senders(&mut ws, &gw).await;
    // Past the newest sighting, nothing is within a threshold of 0 s.
    wait_past(latest_sighting(&gw).await).await;
    let all = call_ok(&mut ws, "system.presence", json!({})).await;
    assert_eq!(
        all["summary"],
        json!({"total": 3, "online": 0, "offline": 3}),
        "{all}"
    );
    assert!(
        all["presence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == json!("offline")),
        "{all}"
    );
    let online = call_ok(&mut ws, "system.presence", json!({"status": "online"})).await;
    assert_eq!(online["presence"], json!([]));
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn a_large_threshold_keeps_old_senders_online() {
    let gw = TestGateway::start(&format!(
        "{FAST_QUEUE}[presence]\nonline_threshold_seconds = 86400\n"
    ))
    .await;
    let mut ws = gw.client().await;
    send(&mut ws, "telegram:123", "hello").await;
    seed_old_sender(&gw).await;
    let all = call_ok(&mut ws, "system.presence", json!({})).await;
    assert_eq!(
        all["summary"],
        json!({"total": 2, "online": 2, "offline": 0}),
        "an hour ago is within a day: {all}"
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn out_of_range_params_are_invalid_request() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let mut ws = gw.client().await;
    for (params, path) in [
        (json!({"limit": 0}), "params.limit"),
        (json!({"status": "away"}), "params.status"),
        (json!({"channel": 5}), "params.channel"),
        (json!({"since": 5}), "params.since"),
        // Spec: `limit` maximum 1000.
        (json!({"limit": 1001}), "params.limit"),
    ] {
        let reply = ws.call("system.presence", params.clone()).await;
        assert_invalid(&reply, path, &format!("system.presence {params}"));
    }
    stop(gw, [ws]).await;
}
