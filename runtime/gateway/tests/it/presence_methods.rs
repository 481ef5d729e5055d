//! `system.presence` handled in process (`TestGateway::in_process`: the gateway's own dispatch,
//! scope checks included, without a socket; the transport has its own tests): senders are
//! driven in through `agent.send` on channel sessions (`telegram:123` = channel `telegram`,
//! sender `123`) and tracked in the SQLite store with first/last seen and message counts;
//! online/offline comes from `[presence] online_threshold_seconds`. The calls go through the
//! generated typed client, so every reply also decodes into the spec's types; the params the
//! types cannot express stay raw.
//!
//! Online/offline is checked without fixed sleeps: a threshold so large that every sender is
//! online, a threshold of 0 after the clock has passed the last sighting (everything is then
//! offline), and, for a mix, a sender written into the store as seen an hour ago (the wire has
//! no way to backdate a message).
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json `system.presence` (ordered by
//! `lastSeenAt` descending, filters combine with AND, `summary` counts every sender matching
//! `channel` regardless of `status` and `limit`).

use std::num::NonZeroU64;

use crate::method_checks;
use crate::support;
use crate::support::sid;

use flynn_gateway::auth::Identity;
use flynn_protocol::Scopes;
use flynn_protocol::types::{
    self, PresenceEntry, PresenceStatus, PresenceSummary, SystemPresenceParams,
    SystemPresenceResult,
};
use method_checks::{assert_invalid, now_ms, wait_past};
use serde_json::json;
use support::{InProcessClient, TestGateway, rpc_error};

/// No debounce, so each `agent.send` runs at once.
const FAST_QUEUE: &str = "[queue]\ndebounce_ms = 0\n";

async fn send(client: &InProcessClient, session: &str, text: &str) {
    client
        .agent_send(types::AgentSendParams {
            session_id: Some(sid(session)),
            message: text.to_owned(),
            attachments: Vec::new(),
            idempotency_key: None,
            session: None,
        })
        .await
        .unwrap_or_else(|e| panic!("agent.send to {session}: {e}"));
}

/// `system.presence` with `params`.
async fn presence(client: &InProcessClient, params: SystemPresenceParams) -> SystemPresenceResult {
    client
        .system_presence(params.clone())
        .await
        .unwrap_or_else(|e| panic!("system.presence {params:?}: {e}"))
}

fn limit(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).expect("a limit above 0")
}

fn summary(total: u64, online: u64, offline: u64) -> PresenceSummary {
    PresenceSummary {
        total,
        online,
        offline,
    }
}

/// `(channel, senderId)` of each entry, in order.
fn who(result: &SystemPresenceResult) -> Vec<(String, String)> {
    result
        .presence
        .iter()
        .map(|e| (e.channel.clone(), e.sender_id.clone()))
        .collect()
}

fn pair(channel: &str, sender: &str) -> (String, String) {
    (channel.to_owned(), sender.to_owned())
}

fn entry<'a>(result: &'a SystemPresenceResult, channel: &str, sender: &str) -> &'a PresenceEntry {
    result
        .presence
        .iter()
        .find(|e| e.channel == channel && e.sender_id == sender)
        .unwrap_or_else(|| panic!("{channel}:{sender} listed: {result:?}"))
}

/// Sends from telegram:123 (twice), telegram:456 and slack:U42, each strictly later than the
/// one before, and returns the time window they happened in.
async fn drive_senders(client: &InProcessClient, gw: &TestGateway) -> (u64, u64) {
    let t0 = now_ms();
    let mut last = t0;
    for (session, text) in [
        ("telegram:123", "first message"),
        ("telegram:123", "second message"),
        ("telegram:456", "hi from 456"),
        ("slack:U42", "hi from slack"),
    ] {
        wait_past(last).await;
        send(client, session, text).await;
        let seen = latest_sighting(gw).await;
        assert!(seen > last, "each message is a later sighting");
        last = seen;
    }
    (t0, now_ms())
}

/// The newest `lastSeenAt` stored (read through the gateway's own store).
async fn latest_sighting(gw: &TestGateway) -> u64 {
    let records = gw
        .gateway()
        .store
        .presence(None, 1)
        .await
        .expect("presence query");
    records.first().map_or(0, |r| r.last_seen_ms as u64)
}

/// Writes a sender last seen an hour ago straight into the gateway's store.
async fn seed_old_sender(gw: &TestGateway) -> u64 {
    let an_hour_ago = now_ms() - 3_600_000;
    gw.gateway()
        .store
        .record_presence("telegram", "999", Some("old bob"), an_hour_ago as i64)
        .await
        .expect("seed presence");
    an_hour_ago
}

#[tokio::test]
async fn senders_are_tracked_with_first_and_last_seen_and_counts() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    let empty = presence(&client, Default::default()).await;
    assert_eq!(
        empty,
        SystemPresenceResult {
            presence: Vec::new(),
            summary: summary(0, 0, 0)
        }
    );

    let (t0, t1) = drive_senders(&client, &gw).await;
    let all = presence(&client, Default::default()).await;
    assert_eq!(
        who(&all),
        [
            pair("slack", "U42"),
            pair("telegram", "456"),
            pair("telegram", "123")
        ],
        "most recently seen first: {all:?}"
    );
    let alice = entry(&all, "telegram", "123");
    let first = alice.first_seen_at;
    let last = alice.last_seen_at;
    assert!(
        t0 <= first && first < last && last <= t1,
        "{t0} <= {first} < {last} <= {t1}"
    );
    assert_eq!(alice.message_count, 2);
    assert_eq!(alice.status, "online");
    for (channel, sender) in [("telegram", "456"), ("slack", "U42")] {
        let e = entry(&all, channel, sender);
        assert_eq!(e.message_count, 1, "{e:?}");
        assert_eq!(e.first_seen_at, e.last_seen_at, "{e:?}");
        assert_eq!(e.status, "online", "{e:?}");
        assert!(e.last_seen_at > last, "{e:?}");
    }
    assert_eq!(all.summary, summary(3, 3, 0));

    gw.stop().await;
}

#[tokio::test]
async fn filters_combine_and_summary_ignores_status_and_limit() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    drive_senders(&client, &gw).await;
    let old_seen = seed_old_sender(&gw).await;

    let all = presence(&client, Default::default()).await;
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
    assert_eq!(bob.status, "offline", "seen an hour ago, threshold 300 s");
    assert_eq!(bob.sender_name.as_deref(), Some("old bob"));
    assert_eq!(bob.last_seen_at, old_seen);
    assert_eq!(all.summary, summary(4, 3, 1));

    let online = presence(
        &client,
        SystemPresenceParams {
            status: Some(PresenceStatus::Online),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        who(&online),
        [
            pair("slack", "U42"),
            pair("telegram", "456"),
            pair("telegram", "123")
        ]
    );
    assert_eq!(online.summary, all.summary, "summary ignores `status`");
    let offline = presence(
        &client,
        SystemPresenceParams {
            status: Some(PresenceStatus::Offline),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(who(&offline), [pair("telegram", "999")]);
    assert_eq!(offline.summary, all.summary);

    let telegram = presence(
        &client,
        SystemPresenceParams {
            channel: Some("telegram".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        who(&telegram),
        [
            pair("telegram", "456"),
            pair("telegram", "123"),
            pair("telegram", "999")
        ]
    );
    assert_eq!(
        telegram.summary,
        summary(3, 2, 1),
        "summary counts the senders of the channel"
    );
    let both = presence(
        &client,
        SystemPresenceParams {
            channel: Some("telegram".into()),
            status: Some(PresenceStatus::Online),
            limit: limit(1),
        },
    )
    .await;
    assert_eq!(
        who(&both),
        [pair("telegram", "456")],
        "AND of the filters, then limit"
    );
    assert_eq!(
        both.summary, telegram.summary,
        "summary ignores status and limit"
    );

    let limited = presence(
        &client,
        SystemPresenceParams {
            limit: limit(2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        who(&limited),
        [pair("slack", "U42"), pair("telegram", "456")]
    );
    assert_eq!(limited.summary, all.summary);
    let nobody = presence(
        &client,
        SystemPresenceParams {
            channel: Some("discord".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        nobody,
        SystemPresenceResult {
            presence: Vec::new(),
            summary: summary(0, 0, 0)
        }
    );

    gw.stop().await;
}

#[tokio::test]
async fn threshold_zero_makes_every_earlier_sighting_offline() {
    let gw = TestGateway::start(&format!(
        "{FAST_QUEUE}[presence]\nonline_threshold_seconds = 0\n"
    ))
    .await;
    let client = gw.in_process();
    drive_senders(&client, &gw).await;
    // Past the newest sighting, nothing is within a threshold of 0 s.
    wait_past(latest_sighting(&gw).await).await;
    let all = presence(&client, Default::default()).await;
    assert_eq!(all.summary, summary(3, 0, 3), "{all:?}");
    assert!(
        all.presence.iter().all(|e| e.status == "offline"),
        "{all:?}"
    );
    let online = presence(
        &client,
        SystemPresenceParams {
            status: Some(PresenceStatus::Online),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(online.presence, []);
    gw.stop().await;
}

#[tokio::test]
async fn a_large_threshold_keeps_old_senders_online() {
    let gw = TestGateway::start(&format!(
        "{FAST_QUEUE}[presence]\nonline_threshold_seconds = 86400\n"
    ))
    .await;
    let client = gw.in_process();
    send(&client, "telegram:123", "hello").await;
    seed_old_sender(&gw).await;
    let all = presence(&client, Default::default()).await;
    assert_eq!(
        all.summary,
        summary(2, 2, 0),
        "an hour ago is within a day: {all:?}"
    );
    gw.stop().await;
}

/// Params the typed client cannot send, so raw; answered by the same dispatch the socket uses.
#[tokio::test]
async fn out_of_range_params_are_invalid_request() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let client = gw.in_process();
    for (params, path) in [
        (json!({"limit": 0}), "params.limit"),
        (json!({"status": "away"}), "params.status"),
        (json!({"channel": 5}), "params.channel"),
        (json!({"since": 5}), "params.since"),
        // Spec: `limit` maximum 1000.
        (json!({"limit": 1001}), "params.limit"),
    ] {
        let reply = client.raw("system.presence", params.clone()).await;
        assert_invalid(&reply, path, &format!("system.presence {params}"));
    }
    gw.stop().await;
}

/// The in-process connection carries its identity, so the dispatch's scope check applies: a
/// token holding only `chat` may not read presence (ScopeRequired, naming the scope).
#[tokio::test]
async fn a_connection_without_the_read_scope_is_refused() {
    let gw = TestGateway::start(FAST_QUEUE).await;
    let chat_only = gw.in_process_as(Identity::Token {
        name: "phone".into(),
        scopes: Scopes::NONE.with(types::Scope::Chat),
        sessions: None,
    });
    let error = rpc_error(chat_only.system_presence(Default::default()).await);
    assert_eq!(error.code, -6, "{error:?}");
    assert_eq!(
        error.data,
        Some(json!({"scope": "read", "method": "system.presence"}))
    );
    gw.stop().await;
}
