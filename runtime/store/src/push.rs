//! Web Push subscriptions of the web chat: one row per browser subscription (keyed by its
//! endpoint URL), following one session. The total is capped by the caller's limit, checked in
//! the same transaction as the insert so concurrent registrations cannot overshoot it.

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use crate::push_state::{MAYBE, NONE};
use crate::{Store, StoreError};

/// A stored subscription. `p256dh` and `auth` are the browser's base64url strings as received
/// (already validated by the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub endpoint: String,
    pub session_id: String,
    pub p256dh: String,
    pub auth: String,
    /// When the browser says the subscription expires (epoch ms), if it says.
    pub expiration_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What [`Store::upsert_push_subscription`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushUpsert {
    /// A new endpoint was stored.
    Created,
    /// The endpoint was known: its keys, session and expiry were replaced.
    Updated,
    /// A new endpoint was refused: `count` subscriptions are stored and the cap is reached.
    Full { count: u64 },
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<PushSubscriptionRecord> {
    Ok(PushSubscriptionRecord {
        endpoint: row.get(0)?,
        session_id: row.get(1)?,
        p256dh: row.get(2)?,
        auth: row.get(3)?,
        expiration_ms: row.get(4)?,
        created_at_ms: row.get(5)?,
        updated_at_ms: row.get(6)?,
    })
}

const COLUMNS: &str =
    "endpoint, session_id, p256dh, auth, expiration_ms, created_at_ms, updated_at_ms";

impl Store {
    /// Stores `subscription`, or updates the row of its endpoint (keeping its `created_at_ms`).
    /// A new endpoint is refused with [`PushUpsert::Full`] when `cap` rows are already stored;
    /// an update never is.
    pub async fn upsert_push_subscription(
        &self,
        subscription: PushSubscriptionRecord,
        cap: u64,
    ) -> Result<PushUpsert, StoreError> {
        let push_state = self.push_state.clone();
        self.call(move |conn| {
            // Before the write, on the writer thread: see `PushState`.
            push_state.may_have_some();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known = tx
                .query_row(
                    "SELECT 1 FROM push_subscriptions WHERE endpoint = ?1",
                    [&subscription.endpoint],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            let outcome = if known {
                tx.execute(
                    "UPDATE push_subscriptions SET session_id = ?2, p256dh = ?3, auth = ?4,
                     expiration_ms = ?5, updated_at_ms = ?6 WHERE endpoint = ?1",
                    params![
                        subscription.endpoint,
                        subscription.session_id,
                        subscription.p256dh,
                        subscription.auth,
                        subscription.expiration_ms,
                        subscription.updated_at_ms,
                    ],
                )?;
                PushUpsert::Updated
            } else {
                let count: u64 =
                    tx.query_row("SELECT COUNT(*) FROM push_subscriptions", [], |r| r.get(0))?;
                if count >= cap {
                    return Ok(PushUpsert::Full { count });
                }
                tx.execute(
                    &format!("INSERT INTO push_subscriptions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                    params![
                        subscription.endpoint,
                        subscription.session_id,
                        subscription.p256dh,
                        subscription.auth,
                        subscription.expiration_ms,
                        subscription.created_at_ms,
                        subscription.updated_at_ms,
                    ],
                )?;
                PushUpsert::Created
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    /// Deletes the subscription of `endpoint`; returns whether one was stored.
    pub async fn delete_push_subscription(&self, endpoint: &str) -> Result<bool, StoreError> {
        let endpoint = endpoint.to_owned();
        self.call(move |conn| {
            let n = conn.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = ?1",
                [endpoint],
            )?;
            Ok(n > 0)
        })
        .await
    }

    /// The subscription of `endpoint`, if stored.
    pub async fn push_subscription(
        &self,
        endpoint: &str,
    ) -> Result<Option<PushSubscriptionRecord>, StoreError> {
        let endpoint = endpoint.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM push_subscriptions WHERE endpoint = ?1"),
                    [endpoint],
                    from_row,
                )
                .optional()?)
        })
        .await
    }

    /// How many subscriptions are stored.
    pub async fn push_subscription_count(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM push_subscriptions", [], |r| r.get(0))?)
        })
        .await
    }

    /// The subscriptions following `session_id`, oldest first. Read on the reader thread: the
    /// gateway asks after every finished turn, and that must not queue behind writes.
    pub async fn push_subscriptions_of_session(
        &self,
        session_id: &str,
    ) -> Result<Vec<PushSubscriptionRecord>, StoreError> {
        if !self.may_have_push_subscriptions().await? {
            return Ok(Vec::new());
        }
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM push_subscriptions WHERE session_id = ?1
                 ORDER BY created_at_ms, endpoint"
            ))?;
            let rows = stmt
                .query_map([session_id], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

impl Store {
    /// Known from memory, without a job: no push subscription is stored. `false` when there
    /// may be some, or when nobody asked yet ([`Store::may_have_push_subscriptions`] finds out).
    pub fn has_no_push_subscriptions(&self) -> bool {
        self.push_state.get() == NONE
    }

    /// `false` only when no push subscription is stored (see `push_state.rs`); the first call
    /// counts them on the writer thread, later ones answer from memory.
    pub async fn may_have_push_subscriptions(&self) -> Result<bool, StoreError> {
        match self.push_state.get() {
            NONE => Ok(false),
            MAYBE => Ok(true),
            _ => {
                let state = self.push_state.clone();
                self.call(move |conn| {
                    let any: bool = conn
                        .prepare_cached("SELECT EXISTS (SELECT 1 FROM push_subscriptions)")?
                        .query_row([], |r| r.get(0))?;
                    let found = if any { MAYBE } else { NONE };
                    // An insert that ran first already said MAYBE: keep it.
                    state.learned(found);
                    Ok(state.get() != NONE)
                })
                .await
            }
        }
    }
}
