//! Tool runs, audit log, memory, pairing codes, canvas, presence and nodes.

use crate::common::{count, temp_store};
use flynn_store::{CanvasPut, StoreError, ToolRun};

fn run(session: &str, tool: &str, success: bool, at: i64) -> ToolRun {
    ToolRun {
        session_id: session.into(),
        tool: tool.into(),
        args: r#"{"command":"ls"}"#.into(),
        result: r#"{"exitCode":0}"#.into(),
        success,
        started_at_ms: at,
        finished_at_ms: at + 7,
    }
}

#[tokio::test]
async fn tool_runs_are_recorded_and_listed_oldest_first() {
    let (_dir, store) = temp_store().await;
    let a = store
        .record_tool_run(run("ws:t", "shell.exec", true, 10))
        .await
        .unwrap();
    let b = store
        .record_tool_run(run("ws:t", "web.search", false, 20))
        .await
        .unwrap();
    let c = store
        .record_tool_run(run("ws:t", "fs.read", true, 30))
        .await
        .unwrap();
    assert!(a < b && b < c);
    assert!(
        store.session("ws:t").await.unwrap().is_some(),
        "the run created its session"
    );
    let runs = store.tool_runs("ws:t", 2).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [b, c]);
    assert_eq!(runs[0].run, run("ws:t", "web.search", false, 20));
    let mut bad = run("ws:t", "x", true, 1);
    bad.result = "{".into();
    assert!(matches!(
        store.record_tool_run(bad).await.unwrap_err(),
        StoreError::InvalidJson {
            field: "result",
            ..
        }
    ));
    assert_eq!(count(&store, "tool_runs").await, 3);
}

#[tokio::test]
async fn audit_entries_are_newest_first_and_filter_by_kind() {
    let (_dir, store) = temp_store().await;
    let d = |n: u32| format!(r#"{{"n":{n}}}"#);
    store
        .audit("queue.preempt", Some("ws:a"), d(1), 100)
        .await
        .unwrap();
    store.audit("config.reload", None, d(2), 300).await.unwrap();
    store
        .audit("queue.preempt", Some("ws:b"), d(3), 200)
        .await
        .unwrap();
    store.audit("queue.preempt", None, d(4), 200).await.unwrap();

    let all = store.audit_entries(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.detail.clone()).collect::<Vec<_>>(),
        [d(2), d(4), d(3), d(1)]
    );
    let preempts = store.audit_entries(Some("queue.preempt"), 2).await.unwrap();
    assert_eq!(preempts.len(), 2);
    assert_eq!(preempts[0].detail, d(4), "equal times: later insert first");
    assert_eq!(preempts[1].session_id.as_deref(), Some("ws:b"));
    assert_eq!(preempts[1].at_ms, 200);
    assert!(
        store
            .audit_entries(Some("nothing"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.audit("x", None, "nope".into(), 1).await.unwrap_err(),
        StoreError::InvalidJson {
            field: "detail",
            ..
        }
    ));
}

#[tokio::test]
async fn memory_upsert_keeps_creation_time() {
    let (_dir, store) = temp_store().await;
    assert!(store.memory("checkpoint:ws:a").await.unwrap().is_none());
    store
        .save_memory("checkpoint:ws:a", "v1".into(), 100)
        .await
        .unwrap();
    store
        .save_memory("checkpoint:ws:a", "v2".into(), 250)
        .await
        .unwrap();
    store
        .save_memory("checkpoint:ws:b", "other".into(), 300)
        .await
        .unwrap();
    let m = store.memory("checkpoint:ws:a").await.unwrap().unwrap();
    assert_eq!(m.content, "v2");
    assert_eq!((m.created_at_ms, m.updated_at_ms), (100, 250));
    assert_eq!(m.namespace, "checkpoint:ws:a");
}

#[tokio::test]
async fn pairing_codes_expire_conflict_purge_and_redeem() {
    let (_dir, store) = temp_store().await;
    store
        .insert_pairing_code("AAA111", "telegram", 100, 400)
        .await
        .unwrap();
    store
        .insert_pairing_code("BBB222", "slack", 200, 1_000)
        .await
        .unwrap();
    store
        .insert_pairing_code("CCC333", "telegram", 300, 500)
        .await
        .unwrap();
    let err = store
        .insert_pairing_code("AAA111", "slack", 350, 900)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    let codes =
        |v: Vec<flynn_store::PairingCode>| v.into_iter().map(|c| c.code).collect::<Vec<_>>();
    assert_eq!(
        codes(store.active_pairing_codes(350).await.unwrap()),
        ["CCC333", "BBB222", "AAA111"]
    );
    // Expiry is exclusive: at 400 AAA111 is gone.
    assert_eq!(
        codes(store.active_pairing_codes(400).await.unwrap()),
        ["CCC333", "BBB222"]
    );
    let active = store.active_pairing_codes(450).await.unwrap();
    assert_eq!(active[1].channel, "slack");
    assert_eq!(
        (active[1].created_at_ms, active[1].expires_at_ms),
        (200, 1_000)
    );

    assert_eq!(store.purge_expired_pairing_codes(500).await.unwrap(), 2);
    assert_eq!(store.purge_expired_pairing_codes(500).await.unwrap(), 0);
    assert_eq!(count(&store, "pairing_codes").await, 1);
    // A purged code can be issued again.
    store
        .insert_pairing_code("AAA111", "telegram", 600, 700)
        .await
        .unwrap();

    assert!(
        store
            .redeem_pairing_code("AAA111", 700)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let redeemed = store
        .redeem_pairing_code("BBB222", 900)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(redeemed.channel, "slack");
    assert!(
        store
            .redeem_pairing_code("BBB222", 900)
            .await
            .unwrap()
            .is_none(),
        "only once"
    );
}

/// No per-session cap on canvas artifacts.
const NO_CAP: u32 = u32::MAX;

fn put(session: &str, id: &str, title: Option<&str>, content: &str, at: i64) -> CanvasPut {
    CanvasPut {
        session_id: session.into(),
        artifact_id: id.into(),
        kind: "note".into(),
        title: title.map(str::to_owned),
        content: content.into(),
        metadata: Some(r#"{"lane":"analysis"}"#.into()),
        now_ms: at,
    }
}

#[tokio::test]
async fn canvas_upsert_keeps_created_at_and_lists_newest_first() {
    let (_dir, store) = temp_store().await;
    let (a, created) = store
        .canvas_put(
            put(
                "ws:abc123",
                "summary-card",
                Some("Draft"),
                r###"{"markdown":"## Notes"}"###,
                100,
            ),
            NO_CAP,
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!((a.created_at_ms, a.updated_at_ms), (100, 100));
    assert_eq!(a.kind, "note");

    let mut second = put(
        "ws:abc123",
        "summary-card",
        None,
        r###"{"markdown":"## v2"}"###,
        400,
    );
    second.kind = "markdown".into();
    second.metadata = None;
    let (b, created) = store.canvas_put(second, NO_CAP).await.unwrap();
    assert!(!created);
    assert_eq!((b.created_at_ms, b.updated_at_ms), (100, 400));
    assert_eq!(b.title, None, "a put replaces every field");
    assert_eq!(b.kind, "markdown");
    assert_eq!(b.metadata, None);
    assert_eq!(
        store.canvas_get("ws:abc123", "summary-card").await.unwrap(),
        Some(b.clone())
    );

    store
        .canvas_put(put("ws:abc123", "b-chart", None, "[1,2]", 300), NO_CAP)
        .await
        .unwrap();
    store
        .canvas_put(put("ws:abc123", "a-table", None, "[]", 300), NO_CAP)
        .await
        .unwrap();
    store
        .canvas_put(put("ws:other", "x", None, "{}", 999), NO_CAP)
        .await
        .unwrap();
    let ids = |v: Vec<flynn_store::CanvasArtifact>| {
        v.into_iter().map(|a| a.artifact_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.canvas_list("ws:abc123", 10).await.unwrap()),
        ["summary-card", "a-table", "b-chart"],
        "updated_at desc, then artifact id"
    );
    assert_eq!(
        ids(store.canvas_list("ws:abc123", 2).await.unwrap()),
        ["summary-card", "a-table"]
    );

    assert!(store.canvas_delete("ws:abc123", "a-table").await.unwrap());
    assert!(!store.canvas_delete("ws:abc123", "a-table").await.unwrap());
    assert!(
        store
            .canvas_get("ws:abc123", "a-table")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.canvas_clear("ws:abc123").await.unwrap(), 2);
    assert_eq!(store.canvas_clear("ws:abc123").await.unwrap(), 0);
    assert_eq!(ids(store.canvas_list("ws:other", 10).await.unwrap()), ["x"]);

    let err = store
        .canvas_put(put("ws:abc123", "bad", None, "{", 1), NO_CAP)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidJson {
                field: "content",
                ..
            }
        ),
        "{err}"
    );
}

/// Issue 11: the cap is checked in the insert's transaction, so puts issued together (all
/// queued on the writer before any ran) store exactly `cap` new artifacts; replacing one of
/// them still works at the cap, and the refusal says which session, how many and the limit.
#[tokio::test]
async fn canvas_cap_holds_for_puts_in_flight_together() {
    let (_dir, store) = temp_store().await;
    let cap = 5;
    let puts = (0..40).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .canvas_put(put("ws:full", &format!("a{i}"), None, "{}", i), cap)
                .await
        })
    });
    let mut created = 0;
    for handle in puts.collect::<Vec<_>>() {
        match handle.await.unwrap() {
            Ok((_, true)) => created += 1,
            Ok((a, false)) => panic!("a new id was not created: {a:?}"),
            Err(StoreError::CanvasFull {
                session_id,
                count,
                limit,
            }) => {
                assert_eq!((session_id.as_str(), count, limit), ("ws:full", 5, 5));
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(created, cap);
    assert_eq!(store.canvas_list("ws:full", 100).await.unwrap().len(), 5);

    let stored = store.canvas_list("ws:full", 1).await.unwrap()[0]
        .artifact_id
        .clone();
    let (_, created) = store
        .canvas_put(put("ws:full", &stored, Some("v2"), "{}", 100), cap)
        .await
        .unwrap();
    assert!(!created, "replacing at the cap works");
    let err = store
        .canvas_put(put("ws:full", "one-more", None, "{}", 101), cap)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ws:full") && text.contains('5'), "{text}");
    // A refused put into a session that did not exist leaves no session behind.
    let err = store
        .canvas_put(put("ws:never", "a", None, "{}", 1), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CanvasFull { count: 0, .. }),
        "{err}"
    );
    assert!(store.session("ws:never").await.unwrap().is_none());
}

#[tokio::test]
async fn presence_counts_messages_and_keeps_first_seen() {
    let (_dir, store) = temp_store().await;
    store
        .record_presence("telegram", "123456", Some("alice"), 1_000)
        .await
        .unwrap();
    store
        .record_presence("telegram", "123456", None, 3_000)
        .await
        .unwrap();
    store
        .record_presence("telegram", "123456", Some("alice2"), 2_000)
        .await
        .unwrap();
    store
        .record_presence("telegram", "999", Some("bob"), 2_500)
        .await
        .unwrap();
    store
        .record_presence("slack", "123456", None, 4_000)
        .await
        .unwrap();

    let all = store.presence(None, 10).await.unwrap();
    let keys: Vec<_> = all
        .iter()
        .map(|p| (p.channel.as_str(), p.sender_id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("slack", "123456"),
            ("telegram", "123456"),
            ("telegram", "999")
        ]
    );
    let alice = &all[1];
    assert_eq!(alice.message_count, 3);
    assert_eq!((alice.first_seen_ms, alice.last_seen_ms), (1_000, 3_000));
    assert_eq!(
        alice.sender_name.as_deref(),
        Some("alice2"),
        "name updated when given"
    );
    assert_eq!(all[0].sender_name, None);
    assert_eq!(all[0].message_count, 1);

    let tg = store.presence(Some("telegram"), 1).await.unwrap();
    assert_eq!(tg.len(), 1);
    assert_eq!(tg[0].sender_id, "123456");
    assert!(store.presence(Some("irc"), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn node_state_is_kept_per_part() {
    let (_dir, store) = temp_store().await;
    assert!(store.node("companion-desktop").await.unwrap().is_none());
    assert!(
        store
            .node_location("companion-desktop")
            .await
            .unwrap()
            .is_none()
    );
    let loc1 = r#"{"latitude":37.7749,"longitude":-122.4194}"#;
    let loc2 = r#"{"latitude":1.5,"longitude":2.5,"source":"gps"}"#;
    store
        .save_node_location("companion-desktop", loc1.into(), 10)
        .await
        .unwrap();
    store
        .save_node_status("companion-desktop", r#"{"statusText":"Idle"}"#.into(), 20)
        .await
        .unwrap();
    store
        .save_push_token("companion-desktop", "fcm", "fcm_abc", 30)
        .await
        .unwrap();
    store
        .save_node_location("companion-desktop", loc2.into(), 40)
        .await
        .unwrap();
    store
        .save_push_token("phone", "apns", "apns_1", 50)
        .await
        .unwrap();

    assert_eq!(
        store
            .node_location("companion-desktop")
            .await
            .unwrap()
            .as_deref(),
        Some(loc2)
    );
    assert_eq!(
        store
            .node_status("companion-desktop")
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"statusText":"Idle"}"#)
    );
    let push = store
        .push_token("companion-desktop")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            push.provider.as_str(),
            push.token.as_str(),
            push.updated_at_ms
        ),
        ("fcm", "fcm_abc", 30)
    );
    let desk = store.node("companion-desktop").await.unwrap().unwrap();
    assert_eq!(
        (desk.location_at_ms, desk.status_at_ms),
        (Some(40), Some(20))
    );

    let nodes = store.nodes().await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(),
        ["companion-desktop", "phone"]
    );
    assert_eq!(nodes[1].location, None);
    assert!(store.node_status("phone").await.unwrap().is_none());
    assert!(matches!(
        store
            .save_node_status("phone", "x".into(), 1)
            .await
            .unwrap_err(),
        StoreError::InvalidJson {
            field: "status",
            ..
        }
    ));
}
