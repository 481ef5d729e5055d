//! Sessions and messages: creation, listing, config, activity, history and cascades.

use crate::common::{DAY0, count, msg, temp_store};
use flynn_store::{
    CanvasPut, NewMessage, Role, SessionQuery, StoreError, ToolRun, split_session_id,
};

#[test]
fn session_ids_split_at_the_first_colon() {
    assert_eq!(split_session_id("telegram:123456"), ("telegram", "123456"));
    assert_eq!(split_session_id("ws:abc:1"), ("ws", "abc:1"));
    assert_eq!(split_session_id("default"), ("unknown", "default"));
    assert_eq!(split_session_id(":x"), ("unknown", "x"));
    assert_eq!(split_session_id("web:"), ("web", ""));
}

#[tokio::test]
async fn ensure_session_creates_once_and_derives_frontend_and_user() {
    let (_dir, store) = temp_store().await;
    assert!(store.ensure_session("telegram:123456", 1000).await.unwrap());
    assert!(!store.ensure_session("telegram:123456", 2000).await.unwrap());
    let s = store.session("telegram:123456").await.unwrap().unwrap();
    assert_eq!(s.frontend, "telegram");
    assert_eq!(s.user_id, "123456");
    assert_eq!(s.created_at_ms, 1000);
    assert_eq!(
        s.last_active_at_ms, 1000,
        "ensure on an existing session changes nothing"
    );
    assert_eq!(s.last_message_at_ms, None);
    assert_eq!(s.message_count, 0);
    assert_eq!(s.config, None);

    assert!(store.ensure_session("default", 5).await.unwrap());
    let d = store.session("default").await.unwrap().unwrap();
    assert_eq!(
        (d.frontend.as_str(), d.user_id.as_str()),
        ("unknown", "default")
    );
    assert!(store.session("nope:1").await.unwrap().is_none());
}

#[tokio::test]
async fn list_sessions_orders_by_activity_filters_and_pages() {
    let (_dir, store) = temp_store().await;
    for (id, at) in [
        ("ws:a", 10),
        ("ws:b", 30),
        ("telegram:1", 20),
        ("ws:c", 30),
        ("slack:9", 5),
    ] {
        store.ensure_session(id, at).await.unwrap();
    }
    // A message makes ws:a the most recent; touch makes slack:9 second.
    store
        .append_message(msg("ws:a", Role::User, "hi", 100))
        .await
        .unwrap();
    assert!(store.touch_session("slack:9", 50).await.unwrap());

    let ids =
        |v: &Vec<flynn_store::SessionRecord>| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    let all = SessionQuery {
        limit: 50,
        ..Default::default()
    };
    let (page, total) = store.list_sessions(all.clone()).await.unwrap();
    assert_eq!(total, 5);
    // ws:b and ws:c tie at 30: ordered by id.
    assert_eq!(
        ids(&page),
        ["ws:a", "slack:9", "ws:b", "ws:c", "telegram:1"]
    );

    let (page, total) = store
        .list_sessions(SessionQuery {
            limit: 2,
            offset: 1,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(total, 5, "total ignores the page");
    assert_eq!(ids(&page), ["slack:9", "ws:b"]);

    let (page, total) = store
        .list_sessions(SessionQuery {
            frontend: Some("ws".into()),
            limit: 2,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(ids(&page), ["ws:a", "ws:b"]);

    let (page, total) = store
        .list_sessions(SessionQuery {
            frontend: Some("ws".into()),
            only_ids: Some(vec!["ws:c".into(), "telegram:1".into(), "missing:0".into()]),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec!["ws:c".to_owned()], 1));

    let (page, total) = store
        .list_sessions(SessionQuery {
            only_ids: Some(vec![]),
            ..all
        })
        .await
        .unwrap();
    assert!(page.is_empty());
    assert_eq!(total, 0);
}

#[tokio::test]
async fn touch_session_only_moves_activity_forward() {
    let (_dir, store) = temp_store().await;
    store.ensure_session("ws:t", 100).await.unwrap();
    assert!(store.touch_session("ws:t", 500).await.unwrap());
    assert!(store.touch_session("ws:t", 300).await.unwrap());
    assert_eq!(
        store
            .session("ws:t")
            .await
            .unwrap()
            .unwrap()
            .last_active_at_ms,
        500
    );
    assert!(!store.touch_session("ws:none", 1).await.unwrap());
}

#[tokio::test]
async fn session_config_is_set_cleared_and_validated() {
    let (_dir, store) = temp_store().await;
    store.ensure_session("ws:c", 1).await.unwrap();
    let cfg = r#"{"modelTier":"fast","queue":{"mode":"followup","cap":8}}"#;
    assert!(
        store
            .set_session_config("ws:c", Some(cfg.into()))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .session("ws:c")
            .await
            .unwrap()
            .unwrap()
            .config
            .as_deref(),
        Some(cfg)
    );
    let err = store
        .set_session_config("ws:c", Some("{nope".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidJson {
                field: "config",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store
            .session("ws:c")
            .await
            .unwrap()
            .unwrap()
            .config
            .as_deref(),
        Some(cfg)
    );
    assert!(store.set_session_config("ws:c", None).await.unwrap());
    assert_eq!(store.session("ws:c").await.unwrap().unwrap().config, None);
    assert!(!store.set_session_config("ws:missing", None).await.unwrap());
}

/// `known_session_config` answers without the writer thread, so it must follow every read,
/// write and delete of the config, or an `agent.send` would queue under a stale policy.
#[tokio::test]
async fn known_session_config_follows_reads_writes_and_deletes() {
    let (_dir, store) = temp_store().await;
    assert_eq!(store.known_session_config("ws:k"), None, "never seen");
    store.ensure_session("ws:k", 1).await.unwrap();
    assert_eq!(
        store.known_session_config("ws:k"),
        None,
        "ensure is not a read"
    );
    store.session("ws:k").await.unwrap();
    assert_eq!(store.known_session_config("ws:k"), Some(None));
    let cfg = r#"{"queue":{"mode":"collect"}}"#;
    store
        .set_session_config("ws:k", Some(cfg.into()))
        .await
        .unwrap();
    assert_eq!(
        store.known_session_config("ws:k").flatten().as_deref(),
        Some(cfg)
    );
    assert!(store.delete_session("ws:k").await.unwrap());
    assert_eq!(store.known_session_config("ws:k"), None, "deleted");
    // A session read while missing has no config, which is what it gets when created.
    store.session("ws:k").await.unwrap();
    assert_eq!(store.known_session_config("ws:k"), Some(None));
    store.ensure_session("ws:k", 2).await.unwrap();
    assert_eq!(store.session("ws:k").await.unwrap().unwrap().config, None);
}

#[tokio::test]
async fn append_message_creates_session_and_bumps_its_counters() {
    let (_dir, store) = temp_store().await;
    let a = store
        .append_message(msg("telegram:7", Role::User, "first", 1_000))
        .await
        .unwrap();
    let b = store
        .append_message(msg("telegram:7", Role::Assistant, "second", 3_000))
        .await
        .unwrap();
    // A late-arriving message with an older timestamp does not move the times back.
    let c = store
        .append_message(msg("telegram:7", Role::Tool, "third", 2_000))
        .await
        .unwrap();
    assert!(a < b && b < c);
    let s = store.session("telegram:7").await.unwrap().unwrap();
    assert_eq!(s.created_at_ms, 1_000);
    assert_eq!(s.message_count, 3);
    assert_eq!(s.last_message_at_ms, Some(3_000));
    assert_eq!(s.last_active_at_ms, 3_000);
    assert_eq!((s.frontend.as_str(), s.user_id.as_str()), ("telegram", "7"));
}

#[tokio::test]
async fn history_returns_the_last_messages_oldest_first() {
    let (_dir, store) = temp_store().await;
    let roles = [
        Role::System,
        Role::User,
        Role::Assistant,
        Role::Tool,
        Role::User,
    ];
    for (i, role) in roles.into_iter().enumerate() {
        let mut m = msg("ws:h", role, &format!("m{i}"), 100 + i as i64);
        if i == 3 {
            m.attachments = Some(r#"[{"name":"a.png","mimeType":"image/png"}]"#.into());
        }
        store.append_message(m).await.unwrap();
    }
    store
        .append_message(msg("ws:other", Role::User, "x", 1))
        .await
        .unwrap();

    let all = store.history("ws:h", None).await.unwrap();
    let contents: Vec<_> = all.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(all.iter().map(|m| m.role).collect::<Vec<_>>(), roles);
    assert!(all.iter().all(|m| m.session_id == "ws:h"));
    assert_eq!(
        all[3].attachments.as_deref(),
        Some(r#"[{"name":"a.png","mimeType":"image/png"}]"#)
    );
    assert_eq!(all[4].created_at_ms, 104);

    let last2 = store.history("ws:h", Some(2)).await.unwrap();
    assert_eq!(
        last2.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["m3", "m4"]
    );
    assert!(store.history("ws:h", Some(0)).await.unwrap().is_empty());
    assert_eq!(store.history("ws:h", Some(99)).await.unwrap().len(), 5);
    assert!(store.history("ws:unknown", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_messages_are_rejected_without_writing() {
    let (_dir, store) = temp_store().await;
    let mut bad = msg("ws:bad", Role::User, "x", 1);
    bad.attachments = Some("not json".into());
    let err = store.append_message(bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidJson {
                field: "attachments",
                ..
            }
        ),
        "{err}"
    );
    // A batch is all or nothing: the second message's timestamp has no calendar day.
    let batch = vec![
        msg("ws:bad", Role::User, "ok", 1),
        NewMessage {
            created_at_ms: i64::MAX,
            ..msg("ws:bad", Role::User, "late", 0)
        },
    ];
    let err = store.append_messages(batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidTimestamp(i64::MAX)),
        "{err}"
    );
    assert_eq!(count(&store, "messages").await, 0);
    assert_eq!(count(&store, "sessions").await, 0);

    let ids = store
        .append_messages(vec![
            msg("ws:b", Role::User, "a", 1),
            msg("ws:b", Role::User, "b", 2),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        store.session("ws:b").await.unwrap().unwrap().message_count,
        2
    );
}

#[tokio::test]
async fn roles_parse_and_print_the_protocol_spelling() {
    for role in [Role::User, Role::Assistant, Role::System, Role::Tool] {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
    }
    assert!("robot".parse::<Role>().is_err());
}

#[tokio::test]
async fn delete_session_cascades_to_everything_it_owns() {
    let (_dir, store) = temp_store().await;
    for s in ["ws:gone", "ws:kept"] {
        store
            .append_message(msg(s, Role::User, "kubernetes deploy question", DAY0))
            .await
            .unwrap();
        store
            .record_tool_run(ToolRun {
                session_id: s.into(),
                tool: "shell.exec".into(),
                args: "{}".into(),
                result: "{}".into(),
                success: true,
                started_at_ms: DAY0,
                finished_at_ms: DAY0 + 5,
            })
            .await
            .unwrap();
        store
            .canvas_put(
                CanvasPut {
                    session_id: s.into(),
                    artifact_id: "card".into(),
                    kind: "note".into(),
                    title: None,
                    content: "{}".into(),
                    metadata: None,
                    now_ms: DAY0,
                },
                u32::MAX,
            )
            .await
            .unwrap();
    }
    store
        .audit("queue.preempt", Some("ws:gone"), "{}".into(), DAY0)
        .await
        .unwrap();
    assert_eq!(count(&store, "message_terms").await, 6);

    assert!(store.delete_session("ws:gone").await.unwrap());
    assert!(!store.delete_session("ws:gone").await.unwrap());
    assert!(store.session("ws:gone").await.unwrap().is_none());
    assert!(store.history("ws:gone", None).await.unwrap().is_empty());
    assert!(store.tool_runs("ws:gone", 10).await.unwrap().is_empty());
    assert!(store.canvas_get("ws:gone", "card").await.unwrap().is_none());
    assert_eq!(count(&store, "messages").await, 1);
    assert_eq!(count(&store, "tool_runs").await, 1);
    assert_eq!(count(&store, "canvas_artifacts").await, 1);
    assert_eq!(
        count(&store, "message_terms").await,
        3,
        "terms follow their messages"
    );
    assert_eq!(
        count(&store, "session_days").await,
        1,
        "the daily rollup follows too"
    );
    assert_eq!(count(&store, "term_days").await, 3);
    // The audit trail outlives the session.
    assert_eq!(store.audit_entries(None, 10).await.unwrap().len(), 1);
    let a = store.session_analytics(0, 10).await.unwrap();
    assert_eq!((a.total_sessions, a.total_messages), (1, 1));
    assert_eq!(a.top_tools[0].executions, 1);
    assert_eq!(a.top_topics.iter().map(|t| t.occurrences).sum::<u64>(), 3);
}
