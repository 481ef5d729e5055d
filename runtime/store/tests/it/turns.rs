//! `Store::begin_turn`: a turn's start in one job (session, history, the turn's messages and
//! their senders' presence, one transaction), and the push-subscription lookup that answers
//! from memory while nobody subscribed.

use crate::common::{DAY0, count, msg, temp_store};
use flynn_store::{
    MessageRecord, PresenceUpdate, PushSubscriptionRecord, Role, Store, TurnMessage, TurnStart,
};

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
        history_chars: None,
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

/// What a turn bounded by `limit` messages and `chars` characters must get: going back from the
/// newest message, until `limit` messages or until the user and assistant messages taken hold
/// `chars` characters.
fn expected_tail(all: &[MessageRecord], limit: usize, chars: usize) -> Vec<i64> {
    let mut taken = Vec::new();
    let mut counted = 0;
    for m in all.iter().rev() {
        if taken.len() >= limit || counted >= chars {
            break;
        }
        if matches!(m.role, Role::User | Role::Assistant) {
            counted += m.content.chars().count();
        }
        taken.push(m.id);
    }
    taken.reverse();
    taken
}

async fn bounded_turn(store: &Store, at: i64, chars: u64, text: Option<&str>) -> Vec<i64> {
    let mut turn = start(
        "ws:long",
        at,
        200,
        text.map(|t| user(t, at, None)).into_iter().collect(),
    );
    turn.history_chars = Some(chars);
    let context = store.begin_turn(turn).await.unwrap();
    for m in &context.history {
        assert_eq!(
            m.chars,
            m.content.chars().count(),
            "chars counted for {}",
            m.id
        );
    }
    context.history.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn a_character_bound_reads_history_only_as_far_as_it_needs_from_sqlite_and_memory() {
    let (_dir, store) = temp_store().await;
    // Long answers, short questions, tool output (not counted) and non-ASCII text.
    let mut messages = Vec::new();
    for i in 0..40 {
        let at = DAY0 + i * 10;
        messages.push(msg("ws:long", Role::User, &format!("question {i} é€"), at));
        messages.push(msg("ws:long", Role::Tool, &"t".repeat(3000), at + 1));
        let answer = if i % 2 == 0 {
            "a".repeat(2000)
        } else {
            "ü".repeat(1500)
        };
        messages.push(msg("ws:long", Role::Assistant, &answer, at + 2));
    }
    store.append_messages(messages).await.unwrap();
    let all = store.history("ws:long", None).await.unwrap();
    assert_eq!(all.len(), 120);

    // Nothing of the session in memory: read from SQLite, newest first, as far as the bound.
    let from_sql = bounded_turn(&store, DAY0 + 1000, 5000, None).await;
    assert_eq!(from_sql, expected_tail(&all, 200, 5000));
    assert!(from_sql.len() < 10, "{from_sql:?}");
    // The same again, now from memory.
    assert_eq!(
        bounded_turn(&store, DAY0 + 1001, 5000, None).await,
        from_sql
    );

    // Turns go on: memory drops what the bound no longer needs and still answers exactly.
    let mut now = DAY0 + 1002;
    for i in 0..5 {
        let history = bounded_turn(&store, now, 5000, Some(&"q".repeat(700 * i))).await;
        let all = store.history("ws:long", None).await.unwrap();
        let before_turn = &all[..all.len() - 1];
        assert_eq!(history, expected_tail(before_turn, 200, 5000), "turn {i}");
        // A checkpoint's excerpts (from SQLite at first, then from memory as messages come).
        let excerpts: Vec<(Role, String)> = store
            .history_excerpts("ws:long", 50, 500)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.role, e.text))
            .collect();
        let expected: Vec<(Role, String)> = all[all.len() - 50..]
            .iter()
            .map(|m| (m.role, m.content.chars().take(500).collect()))
            .collect();
        assert_eq!(excerpts, expected, "turn {i}");
        store
            .append_message(msg("ws:long", Role::Assistant, &"b".repeat(1800), now + 1))
            .await
            .unwrap();
        now += 10;
    }

    // A larger bound than memory holds goes back to SQLite for the rest.
    let all = store.history("ws:long", None).await.unwrap();
    let wide = bounded_turn(&store, now, 20_000, None).await;
    assert_eq!(wide, expected_tail(&all, 200, 20_000));
    assert!(wide.len() > from_sql.len());

    // Unbounded readers still get the whole history, and a bound beyond it gets all of it.
    let all = store.history("ws:long", None).await.unwrap();
    let last_50: Vec<i64> = all[all.len() - 50..].iter().map(|m| m.id).collect();
    let history: Vec<i64> = store
        .history("ws:long", Some(50))
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(history, last_50);
    let everything = bounded_turn(&store, now + 1, u64::MAX, None).await;
    assert_eq!(everything, expected_tail(&all, 200, usize::MAX));
    assert_eq!(everything.len(), all.len().min(200));
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

#[tokio::test]
async fn history_excerpts_are_the_last_messages_cut_to_their_first_characters() {
    let (_dir, store) = temp_store().await;
    let messages: Vec<_> = (0..60)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            let text: String = "é€x".chars().cycle().take(i * 20).collect();
            msg("ws:x", role, &text, DAY0 + i as i64)
        })
        .collect();
    store.append_messages(messages).await.unwrap();
    let expected = |limit: usize, chars: usize| -> Vec<(Role, String)> {
        let all: Vec<(Role, String)> = (0..60)
            .map(|i| {
                let role = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                let text = "é€x".chars().cycle().take((i * 20).min(chars)).collect();
                (role, text)
            })
            .collect();
        all[all.len().saturating_sub(limit)..].to_vec()
    };
    let excerpts = |limit: u32, chars: u32| {
        let store = &store;
        async move {
            store
                .history_excerpts("ws:x", limit, chars)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.role, e.text))
                .collect::<Vec<_>>()
        }
    };
    // Memory holds nothing of the session: SQLite cuts the text (by characters, not bytes).
    assert_eq!(excerpts(50, 500).await, expected(50, 500));
    assert_eq!(excerpts(1000, 7).await, expected(60, 7));
    // Memory holds the session now.
    store.history("ws:x", Some(100)).await.unwrap();
    assert_eq!(excerpts(50, 500).await, expected(50, 500));
    assert_eq!(excerpts(1000, 7).await, expected(60, 7));
    assert!(
        store
            .history_excerpts("ws:nobody", 50, 500)
            .await
            .unwrap()
            .is_empty()
    );
}
