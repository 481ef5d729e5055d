//! `Store::begin_turn`: a turn's start in one job (session, history, the turn's messages and
//! their senders' presence, one transaction), and the push-subscription lookup that answers
//! from memory while nobody subscribed.

use crate::common::{DAY0, count, msg, temp_store};
use flynn_store::{PresenceUpdate, PushSubscriptionRecord, Role, TurnMessage, TurnStart};

fn user(text: &str, at: i64, sender: Option<&str>) -> TurnMessage {
    TurnMessage {
        content: text.to_owned(),
        attachments: None,
        created_at_ms: at,
        presence: sender.map(|s| PresenceUpdate {
            channel: "ws".to_owned(),
            sender_id: s.to_owned(),
            sender_name: Some("Ada".to_owned()),
        }),
    }
}

fn start(session: &str, at: i64, limit: u32, messages: Vec<TurnMessage>) -> TurnStart {
    TurnStart {
        session_id: session.to_owned(),
        now_ms: at,
        history_limit: limit,
        messages,
    }
}

#[tokio::test]
async fn begin_turn_creates_the_session_returns_the_history_before_and_appends() {
    let (_dir, store) = temp_store().await;
    let first = store
        .begin_turn(start(
            "ws:a",
            DAY0,
            10,
            vec![user("kubernetes deployment", DAY0, Some("a"))],
        ))
        .await
        .unwrap();
    let session = first.session.expect("begin_turn creates the session");
    assert_eq!(
        (session.frontend.as_str(), session.user_id.as_str()),
        ("ws", "a")
    );
    assert_eq!(
        session.message_count, 0,
        "the record is read before the append"
    );
    assert!(first.history.is_empty());
    store
        .append_message(msg("ws:a", Role::Assistant, "hi", DAY0 + 1))
        .await
        .unwrap();

    let second = store
        .begin_turn(start(
            "ws:a",
            DAY0 + 2,
            1,
            vec![
                user("one", DAY0 + 2, Some("a")),
                user("two", DAY0 + 2, None),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(second.session.unwrap().message_count, 2);
    let last: Vec<&str> = second.history.iter().map(|m| &*m.content).collect();
    assert_eq!(last, ["hi"], "history_limit bounds the history");

    // The turn's messages are stored in order, and later history (memory and SQL) sees them.
    let all = store.history("ws:a", None).await.unwrap();
    let texts: Vec<&str> = all.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["kubernetes deployment", "hi", "one", "two"]);
    assert!(all.iter().all(|m| m.session_id == "ws:a"));
    assert_eq!(all[2].role, Role::User);
    let tail = store.history("ws:a", Some(2)).await.unwrap();
    assert_eq!(tail, all[2..].to_vec());
    assert_eq!(
        store.session("ws:a").await.unwrap().unwrap().message_count,
        4
    );

    // Presence counted once per message that named a sender; terms recorded for user messages.
    let presence = store.presence(Some("ws"), 10).await.unwrap();
    assert_eq!(presence.len(), 1);
    assert_eq!(presence[0].sender_id, "a");
    assert_eq!(presence[0].message_count, 2);
    assert_eq!(presence[0].sender_name.as_deref(), Some("Ada"));
    assert!(count(&store, "message_terms").await > 0);
}

#[tokio::test]
async fn begin_turn_with_bad_attachments_writes_nothing() {
    let (_dir, store) = temp_store().await;
    let mut bad = user("x", DAY0, Some("a"));
    bad.attachments = Some("not json".to_owned());
    let err = store
        .begin_turn(start("ws:a", DAY0, 10, vec![user("ok", DAY0, None), bad]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attachments"), "{err}");
    assert_eq!(count(&store, "sessions").await, 0);
    assert_eq!(count(&store, "messages").await, 0);
    assert_eq!(count(&store, "presence").await, 0);
}

#[tokio::test]
async fn begin_turn_failing_inside_its_transaction_rolls_it_all_back() {
    let (_dir, store) = temp_store().await;
    // The second message's time has no calendar day: the job fails after the first insert.
    let err = store
        .begin_turn(start(
            "ws:a",
            DAY0,
            10,
            vec![user("ok", DAY0, Some("a")), user("late", i64::MAX, None)],
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_eq!(count(&store, "sessions").await, 0);
    assert_eq!(count(&store, "messages").await, 0);
    assert_eq!(count(&store, "presence").await, 0);
    // The writer is usable afterwards (no transaction left open).
    store
        .begin_turn(start("ws:a", DAY0, 10, vec![user("ok", DAY0, None)]))
        .await
        .unwrap();
    assert_eq!(count(&store, "messages").await, 1);
    assert_eq!(store.history("ws:a", Some(10)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn push_lookup_answers_from_memory_until_someone_subscribes() {
    let (_dir, store) = temp_store().await;
    assert!(
        !store.has_no_push_subscriptions(),
        "unknown before the first look"
    );
    assert!(
        store
            .push_subscriptions_of_session("web:a")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.has_no_push_subscriptions(), "known empty after it");
    store.ensure_session("web:a", 1).await.unwrap();
    let sub = PushSubscriptionRecord {
        endpoint: "https://push.example/a".into(),
        session_id: "web:a".into(),
        p256dh: "BCVx".into(),
        auth: "BTBZ".into(),
        expiration_ms: None,
        created_at_ms: 10,
        updated_at_ms: 10,
    };
    store.upsert_push_subscription(sub, 10).await.unwrap();
    assert!(!store.has_no_push_subscriptions());
    let found = store.push_subscriptions_of_session("web:a").await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "a subscription made after the empty look is found"
    );
}

#[tokio::test]
async fn a_reopened_store_finds_the_subscriptions_it_holds() {
    let (dir, store) = temp_store().await;
    store.ensure_session("web:a", 1).await.unwrap();
    let sub = PushSubscriptionRecord {
        endpoint: "https://push.example/a".into(),
        session_id: "web:a".into(),
        p256dh: "BCVx".into(),
        auth: "BTBZ".into(),
        expiration_ms: None,
        created_at_ms: 10,
        updated_at_ms: 10,
    };
    store.upsert_push_subscription(sub, 10).await.unwrap();
    store.close().await;
    let store = flynn_store::Store::open_async(&dir.path().join("gateway.db"))
        .await
        .unwrap();
    assert!(store.may_have_push_subscriptions().await.unwrap());
    assert!(!store.has_no_push_subscriptions());
    assert_eq!(
        store
            .push_subscriptions_of_session("web:a")
            .await
            .unwrap()
            .len(),
        1
    );
}
