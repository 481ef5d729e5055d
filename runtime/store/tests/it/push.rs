//! Web Push subscriptions: stored, updated by endpoint, capped (updates never refused), deleted,
//! and deleted with their session.

use crate::common::temp_store;
use flynn_store::{PushSubscriptionRecord, PushUpsert};

fn sub(endpoint: &str, session: &str, at: i64) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        endpoint: endpoint.into(),
        session_id: session.into(),
        p256dh: "BCVx".into(),
        auth: "BTBZ".into(),
        expiration_ms: None,
        created_at_ms: at,
        updated_at_ms: at,
    }
}

#[tokio::test]
async fn subscriptions_are_capped_updated_by_endpoint_and_follow_their_session() {
    let (_dir, store) = temp_store().await;
    store.ensure_session("web:a", 1).await.unwrap();
    let a = sub("https://push.example/a", "web:a", 10);
    assert_eq!(
        store.upsert_push_subscription(a.clone(), 2).await.unwrap(),
        PushUpsert::Created
    );
    let b = sub("https://push.example/b", "web:b", 20);
    assert_eq!(
        store.upsert_push_subscription(b, 2).await.unwrap(),
        PushUpsert::Created
    );
    let c = sub("https://push.example/c", "web:a", 30);
    assert_eq!(
        store.upsert_push_subscription(c, 2).await.unwrap(),
        PushUpsert::Full { count: 2 }
    );
    // Updating a stored endpoint at the cap: new keys and session, the first creation kept.
    let moved = PushSubscriptionRecord {
        p256dh: "BNEW".into(),
        updated_at_ms: 40,
        created_at_ms: 40,
        ..a
    };
    assert_eq!(
        store.upsert_push_subscription(moved, 2).await.unwrap(),
        PushUpsert::Updated
    );
    let stored = store
        .push_subscription("https://push.example/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.p256dh.as_str(),
            stored.created_at_ms,
            stored.updated_at_ms
        ),
        ("BNEW", 10, 40)
    );
    assert_eq!(store.push_subscription_count().await.unwrap(), 2);
    let of_a = store.push_subscriptions_of_session("web:a").await.unwrap();
    assert_eq!(of_a.len(), 1);

    assert!(
        store
            .delete_push_subscription("https://push.example/b")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_push_subscription("https://push.example/b")
            .await
            .unwrap()
    );
    // Deleting the session takes its subscriptions.
    store.delete_session("web:a").await.unwrap();
    assert_eq!(store.push_subscription_count().await.unwrap(), 0);
}
