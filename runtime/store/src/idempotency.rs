//! `agent.send` idempotency keys: which message a key named, which turn answered it and, once
//! that turn ended, its reply (JSON text), kept for a configured time and across restarts.

use rusqlite::{OptionalExtension, params};

use crate::error::check_json;
use crate::{Store, StoreError};

/// One key of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub session_id: String,
    pub key: String,
    /// Identifies the message the key was first used with (a hash chosen by the caller).
    pub fingerprint: String,
    pub run_id: String,
    /// JSON text of the turn's reply; `None` while the turn has not ended.
    pub outcome: Option<String>,
    pub created_at_ms: i64,
}

impl Store {
    /// The key's record when it was created at or after `not_before_ms` (older ones have
    /// expired and are ignored).
    pub async fn idempotency_key(
        &self,
        session_id: &str,
        key: &str,
        not_before_ms: i64,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (session_id, key) = (session_id.to_owned(), key.to_owned());
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT fingerprint, run_id, outcome, created_at_ms FROM idempotency_keys
                     WHERE session_id = ?1 AND key = ?2 AND created_at_ms >= ?3",
                )?
                .query_row(params![session_id, key, not_before_ms], |row| {
                    Ok(IdempotencyRecord {
                        session_id: session_id.clone(),
                        key: key.clone(),
                        fingerprint: row.get(0)?,
                        run_id: row.get(1)?,
                        outcome: row.get(2)?,
                        created_at_ms: row.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Records a key (replacing an expired or earlier record of the same key).
    pub async fn put_idempotency_key(&self, record: IdempotencyRecord) -> Result<(), StoreError> {
        if let Some(outcome) = &record.outcome {
            check_json("outcome", outcome)?;
        }
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys
                     (session_id, key, fingerprint, run_id, outcome, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                record.session_id,
                record.key,
                record.fingerprint,
                record.run_id,
                record.outcome,
                record.created_at_ms
            ])?;
            Ok(())
        })
        .await
    }

    /// Stores the reply of the key's turn as JSON text (`run_id` empty: the turn recorded by
    /// [`Store::bind_idempotency_key`] stays).
    pub async fn finish_idempotency_key(
        &self,
        session_id: &str,
        key: &str,
        run_id: &str,
        outcome: String,
    ) -> Result<(), StoreError> {
        check_json("outcome", &outcome)?;
        let (session_id, key, run_id) = (session_id.to_owned(), key.to_owned(), run_id.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotency_keys
                 SET outcome = ?3, run_id = CASE WHEN ?4 = '' THEN run_id ELSE ?4 END
                 WHERE session_id = ?1 AND key = ?2",
            )?
            .execute(params![session_id, key, outcome, run_id])?;
            Ok(())
        })
        .await
    }

    /// Records which turn answers the key (when the turn starts).
    pub async fn bind_idempotency_key(
        &self,
        session_id: &str,
        key: &str,
        run_id: &str,
    ) -> Result<(), StoreError> {
        let (session_id, key, run_id) = (session_id.to_owned(), key.to_owned(), run_id.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET run_id = ?3 WHERE session_id = ?1 AND key = ?2",
            )?
            .execute(params![session_id, key, run_id])?;
            Ok(())
        })
        .await
    }

    /// The key answered by turn `run_id` of the session, if a key named it.
    pub async fn idempotency_run(
        &self,
        session_id: &str,
        run_id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (session_id, run_id) = (session_id.to_owned(), run_id.to_owned());
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT key, fingerprint, outcome, created_at_ms FROM idempotency_keys
                     WHERE session_id = ?1 AND run_id = ?2 AND run_id != ''",
                )?
                .query_row(params![session_id, run_id], |row| {
                    Ok(IdempotencyRecord {
                        session_id: session_id.clone(),
                        key: row.get(0)?,
                        fingerprint: row.get(1)?,
                        run_id: run_id.clone(),
                        outcome: row.get(2)?,
                        created_at_ms: row.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Deletes keys created before `before_ms`; returns how many.
    pub async fn purge_idempotency_keys(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.call(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at_ms < ?1")?
                .execute(params![before_ms])?)
        })
        .await
    }
}
