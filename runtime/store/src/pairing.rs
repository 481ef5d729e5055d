//! Pairing codes handed to unknown senders; a code is active until it expires or is redeemed.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// A stored pairing code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingCode {
    pub code: String,
    pub channel: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<PairingCode> {
    Ok(PairingCode {
        code: row.get(0)?,
        channel: row.get(1)?,
        created_at_ms: row.get(2)?,
        expires_at_ms: row.get(3)?,
    })
}

impl Store {
    /// Stores a new code. A code that is already stored (even expired but not yet purged)
    /// fails with [`StoreError::Conflict`]: generate another.
    pub async fn insert_pairing_code(
        &self,
        code: &str,
        channel: &str,
        created_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let (code, channel) = (code.to_owned(), channel.to_owned());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO pairing_codes (code, channel, created_at_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![code, channel, created_at_ms, expires_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Codes not expired at `now_ms` (expiry is exclusive: a code expiring at `now_ms` is
    /// gone), newest first (ties by code).
    pub async fn active_pairing_codes(&self, now_ms: i64) -> Result<Vec<PairingCode>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT code, channel, created_at_ms, expires_at_ms FROM pairing_codes
                 WHERE expires_at_ms > ?1 ORDER BY created_at_ms DESC, code",
            )?;
            let rows = stmt
                .query_map([now_ms], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Consumes an active code: deletes it and returns it, or `None` if it is unknown or
    /// expired at `now_ms`. A code can be redeemed once.
    pub async fn redeem_pairing_code(
        &self,
        code: &str,
        now_ms: i64,
    ) -> Result<Option<PairingCode>, StoreError> {
        let code = code.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "DELETE FROM pairing_codes WHERE code = ?1 AND expires_at_ms > ?2
                     RETURNING code, channel, created_at_ms, expires_at_ms",
                    params![code, now_ms],
                    from_row,
                )
                .optional()?)
        })
        .await
    }

    /// Deletes codes expired at `now_ms`; returns how many.
    pub async fn purge_expired_pairing_codes(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let n = conn.execute(
                "DELETE FROM pairing_codes WHERE expires_at_ms <= ?1",
                [now_ms],
            )?;
            Ok(n as u64)
        })
        .await
    }
}
