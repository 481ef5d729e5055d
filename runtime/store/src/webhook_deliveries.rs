//! Delivery ids of webhooks, for replay protection: each (hook, delivery id) is accepted once
//! within the hook's replay window, across restarts.

use rusqlite::params;

use crate::{Store, StoreError};

impl Store {
    /// Records that `hook` received delivery `delivery_id` at `now_ms`, and forgets the hook's
    /// ids seen before `forget_before_ms`. Returns `true` when the id is new, `false` when it
    /// was already recorded (a replay).
    ///
    /// The insert is `ON CONFLICT DO NOTHING` and the answer is the number of rows it changed,
    /// so of two concurrent deliveries of one id exactly one gets `true`.
    pub async fn record_webhook_delivery(
        &self,
        hook: &str,
        delivery_id: &str,
        now_ms: i64,
        forget_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let (hook, delivery_id) = (hook.to_owned(), delivery_id.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(
                "DELETE FROM webhook_deliveries WHERE hook = ?1 AND seen_at_ms < ?2",
            )?
            .execute(params![hook, forget_before_ms])?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO webhook_deliveries (hook, delivery_id, seen_at_ms)
                     VALUES (?1, ?2, ?3) ON CONFLICT (hook, delivery_id) DO NOTHING",
                )?
                .execute(params![hook, delivery_id, now_ms])?;
            tx.commit()?;
            Ok(inserted == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_id_is_new_once_per_hook_until_it_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_async(&dir.path().join("s.sqlite"))
            .await
            .unwrap();
        assert!(
            store
                .record_webhook_delivery("a", "msg_1", 1_000, 0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_webhook_delivery("a", "msg_1", 2_000, 0)
                .await
                .unwrap()
        );
        // Another hook has its own ids.
        assert!(
            store
                .record_webhook_delivery("b", "msg_1", 2_000, 0)
                .await
                .unwrap()
        );
        // Once its window has passed the id is forgotten (its timestamp would be stale by then).
        assert!(
            store
                .record_webhook_delivery("a", "msg_1", 9_000, 5_000)
                .await
                .unwrap()
        );
        store.close().await;
    }
}
