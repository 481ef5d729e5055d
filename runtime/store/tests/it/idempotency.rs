//! `agent.send` idempotency keys: stored, finished with their reply, expired by time, and
//! deleted with their session.

use crate::common::temp_store;
use flynn_store::{IdempotencyRecord, StoreError};

fn key(session: &str, key: &str, at: i64) -> IdempotencyRecord {
    IdempotencyRecord {
        session_id: session.into(),
        key: key.into(),
        fingerprint: "fnv1a64:0123456789abcdef:5".into(),
        run_id: String::new(),
        outcome: None,
        created_at_ms: at,
    }
}

#[tokio::test]
async fn keys_are_kept_finished_expired_and_deleted_with_their_session() {
    let (_dir, store) = temp_store().await;
    store.ensure_session("ws:k", 1_000).await.unwrap();
    store
        .put_idempotency_key(key("ws:k", "a", 1_000))
        .await
        .unwrap();
    store
        .put_idempotency_key(key("ws:k", "b", 5_000))
        .await
        .unwrap();

    let a = store
        .idempotency_key("ws:k", "a", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.outcome, None);
    store
        .finish_idempotency_key(
            "ws:k",
            "a",
            "run_1",
            r#"{"result":{"content":"hi"}}"#.into(),
        )
        .await
        .unwrap();
    let a = store
        .idempotency_key("ws:k", "a", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.run_id, "run_1");
    assert_eq!(a.outcome.as_deref(), Some(r#"{"result":{"content":"hi"}}"#));
    // Another session's key of the same name is another key.
    assert!(
        store
            .idempotency_key("ws:other", "a", 0)
            .await
            .unwrap()
            .is_none()
    );

    // Older than the TTL: ignored, then purged.
    assert!(
        store
            .idempotency_key("ws:k", "a", 2_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.purge_idempotency_keys(2_000).await.unwrap(), 1);
    assert!(
        store
            .idempotency_key("ws:k", "b", 2_000)
            .await
            .unwrap()
            .is_some()
    );

    // Not JSON: refused.
    let err = store
        .finish_idempotency_key("ws:k", "b", "run_2", "nope".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidJson { .. }), "{err:?}");

    // A deleted session takes its keys with it.
    assert!(store.delete_session("ws:k").await.unwrap());
    assert!(
        store
            .idempotency_key("ws:k", "b", 0)
            .await
            .unwrap()
            .is_none()
    );
}
