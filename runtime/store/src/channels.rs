//! Chat channels: which senders are paired (or were asked for a pairing code), and which
//! platform deliveries were already accepted (redeliveries of a message or activity id are
//! ignored until their record expires).

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// A sender that redeemed a pairing code on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedSender {
    pub channel: String,
    pub sender_id: String,
    pub sender_name: Option<String>,
    pub paired_at_ms: i64,
}

impl Store {
    /// Whether `sender_id` redeemed a pairing code on `channel`.
    pub async fn is_sender_paired(
        &self,
        channel: &str,
        sender_id: &str,
    ) -> Result<bool, StoreError> {
        let (channel, sender_id) = (channel.to_owned(), sender_id.to_owned());
        self.call(move |conn| {
            let paired: Option<Option<i64>> = conn
                .prepare_cached(
                    "SELECT paired_at_ms FROM channel_senders WHERE channel = ?1 AND sender_id = ?2",
                )?
                .query_row(params![channel, sender_id], |r| r.get(0))
                .optional()?;
            Ok(matches!(paired, Some(Some(_))))
        })
        .await
    }

    /// Records that an unpaired sender is asked for a pairing code at `now_ms`, unless it was
    /// asked after `now_ms - ask_again_after_ms`. Returns whether to ask now. Unpaired senders
    /// asked before that window are purged here, so the table stays bounded by recent senders.
    pub async fn note_pairing_asked(
        &self,
        channel: &str,
        sender_id: &str,
        sender_name: Option<&str>,
        now_ms: i64,
        ask_again_after_ms: i64,
    ) -> Result<bool, StoreError> {
        let (channel, sender_id) = (channel.to_owned(), sender_id.to_owned());
        let sender_name = sender_name.map(str::to_owned);
        let before = now_ms.saturating_sub(ask_again_after_ms);
        self.call(move |conn| {
            conn.prepare_cached(
                "DELETE FROM channel_senders WHERE paired_at_ms IS NULL AND asked_at_ms <= ?1",
            )?
            .execute([before])?;
            let changed = conn
                .prepare_cached(
                    "INSERT INTO channel_senders (channel, sender_id, sender_name, asked_at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (channel, sender_id) DO UPDATE SET asked_at_ms = excluded.asked_at_ms
                     WHERE paired_at_ms IS NULL AND (asked_at_ms IS NULL OR asked_at_ms <= ?5)",
                )?
                .execute(params![channel, sender_id, sender_name, now_ms, before])?;
            Ok(changed == 1)
        })
        .await
    }

    /// Redeems `code` for `channel` and pairs the sender, in one transaction: the code is used
    /// up only if it is active, belongs to `channel`, and the sender is paired with it. Returns
    /// whether the code was valid.
    pub async fn pair_sender_with_code(
        &self,
        channel: &str,
        sender_id: &str,
        sender_name: Option<&str>,
        code: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (channel, sender_id, code) =
            (channel.to_owned(), sender_id.to_owned(), code.to_owned());
        let sender_name = sender_name.map(str::to_owned);
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let redeemed = tx.execute(
                "DELETE FROM pairing_codes WHERE code = ?1 AND channel = ?2 AND expires_at_ms > ?3",
                params![code, channel, now_ms],
            )?;
            if redeemed == 1 {
                tx.execute(
                    "INSERT INTO channel_senders (channel, sender_id, sender_name, paired_at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (channel, sender_id) DO UPDATE SET
                         paired_at_ms = excluded.paired_at_ms,
                         sender_name = COALESCE(excluded.sender_name, sender_name)",
                    params![channel, sender_id, sender_name, now_ms],
                )?;
            }
            tx.commit()?;
            Ok(redeemed == 1)
        })
        .await
    }

    /// Paired senders (of one channel, or all), most recently paired first.
    pub async fn paired_senders(
        &self,
        channel: Option<&str>,
    ) -> Result<Vec<PairedSender>, StoreError> {
        let channel = channel.map(str::to_owned);
        self.call(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT channel, sender_id, sender_name, paired_at_ms FROM channel_senders
                     WHERE paired_at_ms IS NOT NULL AND (?1 IS NULL OR channel = ?1)
                     ORDER BY paired_at_ms DESC, channel, sender_id",
                )?
                .query_map([channel], |r| {
                    Ok(PairedSender {
                        channel: r.get(0)?,
                        sender_id: r.get(1)?,
                        sender_name: r.get(2)?,
                        paired_at_ms: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Records a platform delivery id as accepted until `expires_at_ms`. Returns `true` the
    /// first time (or once an earlier record expired), `false` for a redelivery. Expired
    /// records are purged here, so the table holds at most one window of deliveries.
    pub async fn first_delivery(
        &self,
        channel: &str,
        delivery_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let (channel, delivery_id) = (channel.to_owned(), delivery_id.to_owned());
        self.call(move |conn| {
            conn.prepare_cached("DELETE FROM channel_deliveries WHERE expires_at_ms <= ?1")?
                .execute([now_ms])?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO channel_deliveries (channel, delivery_id, expires_at_ms)
                     VALUES (?1, ?2, ?3) ON CONFLICT (channel, delivery_id) DO NOTHING",
                )?
                .execute(params![channel, delivery_id, expires_at_ms])?;
            Ok(inserted == 1)
        })
        .await
    }
}

impl Store {
    /// Forgets a recorded delivery (its message was not taken after all), so a redelivery is
    /// processed.
    pub async fn forget_delivery(
        &self,
        channel: &str,
        delivery_id: &str,
    ) -> Result<(), StoreError> {
        let (channel, delivery_id) = (channel.to_owned(), delivery_id.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "DELETE FROM channel_deliveries WHERE channel = ?1 AND delivery_id = ?2",
            )?
            .execute(params![channel, delivery_id])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_async(&dir.path().join("s.sqlite"))
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_delivery_is_first_once_until_it_expires() {
        let (_dir, s) = store().await;
        assert!(s.first_delivery("teams", "a1", 0, 100).await.unwrap());
        assert!(!s.first_delivery("teams", "a1", 50, 150).await.unwrap());
        assert!(s.first_delivery("gmail", "a1", 50, 150).await.unwrap());
        assert!(s.first_delivery("teams", "a1", 100, 200).await.unwrap());
        s.forget_delivery("teams", "a1").await.unwrap();
        assert!(s.first_delivery("teams", "a1", 110, 200).await.unwrap());
    }

    #[tokio::test]
    async fn a_code_pairs_once_and_only_on_its_channel() {
        let (_dir, s) = store().await;
        s.insert_pairing_code("ABCDEFGH", "teams", 0, 1000)
            .await
            .unwrap();
        assert!(
            !s.pair_sender_with_code("gmail", "u", None, "ABCDEFGH", 10)
                .await
                .unwrap()
        );
        assert!(!s.is_sender_paired("teams", "u").await.unwrap());
        assert!(
            s.pair_sender_with_code("teams", "u", Some("Ann"), "ABCDEFGH", 10)
                .await
                .unwrap()
        );
        assert!(s.is_sender_paired("teams", "u").await.unwrap());
        assert!(
            !s.pair_sender_with_code("teams", "v", None, "ABCDEFGH", 10)
                .await
                .unwrap()
        );
        let paired = s.paired_senders(Some("teams")).await.unwrap();
        assert_eq!(paired.len(), 1);
        assert_eq!(paired[0].sender_name.as_deref(), Some("Ann"));
    }

    #[tokio::test]
    async fn an_expired_code_does_not_pair() {
        let (_dir, s) = store().await;
        s.insert_pairing_code("ABCDEFGH", "teams", 0, 1000)
            .await
            .unwrap();
        assert!(
            !s.pair_sender_with_code("teams", "u", None, "ABCDEFGH", 1000)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_sender_is_asked_once_per_window() {
        let (_dir, s) = store().await;
        assert!(s.note_pairing_asked("bb", "u", None, 0, 100).await.unwrap());
        assert!(
            !s.note_pairing_asked("bb", "u", None, 50, 100)
                .await
                .unwrap()
        );
        assert!(
            s.note_pairing_asked("bb", "u", None, 100, 100)
                .await
                .unwrap()
        );
    }
}
