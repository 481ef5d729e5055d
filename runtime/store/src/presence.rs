//! Sender presence: who wrote on which channel, when first and last, and how often.
//! Online/offline is the caller's judgement from `last_seen_ms`.

use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// One sender on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRecord {
    pub channel: String,
    pub sender_id: String,
    pub sender_name: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub message_count: u64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<PresenceRecord> {
    Ok(PresenceRecord {
        channel: row.get(0)?,
        sender_id: row.get(1)?,
        sender_name: row.get(2)?,
        first_seen_ms: row.get(3)?,
        last_seen_ms: row.get(4)?,
        message_count: row.get(5)?,
    })
}

/// Counts one message of `?2` on channel `?1` (name `?3`, at `?4`); see
/// [`Store::record_presence`].
pub(crate) const UPSERT_SQL: &str = "INSERT INTO presence
         (channel, sender_id, sender_name, first_seen_ms, last_seen_ms, message_count)
     VALUES (?1, ?2, ?3, ?4, ?4, 1)
     ON CONFLICT (channel, sender_id) DO UPDATE SET
         sender_name = COALESCE(excluded.sender_name, sender_name),
         first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
         last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms),
         message_count = message_count + 1";

impl Store {
    /// Counts one message from the sender at `at_ms`: first sighting creates the record;
    /// later ones add 1 to `message_count`, widen first/last seen (out-of-order times never move
    /// them inwards) and replace the name when one is given.
    pub async fn record_presence(
        &self,
        channel: &str,
        sender_id: &str,
        sender_name: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let (channel, sender_id) = (channel.to_owned(), sender_id.to_owned());
        let sender_name = sender_name.map(str::to_owned);
        self.call(move |conn| {
            conn.prepare_cached(UPSERT_SQL)?.execute(params![
                channel,
                sender_id,
                sender_name,
                at_ms
            ])?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` senders (of one channel, or all), most recently seen first (ties by
    /// channel, then sender id).
    pub async fn presence(
        &self,
        channel: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        let channel = channel.map(str::to_owned);
        self.call(move |conn| {
            let columns =
                "channel, sender_id, sender_name, first_seen_ms, last_seen_ms, message_count";
            let rows = match channel {
                Some(channel) => conn
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM presence WHERE channel = ?1
                         ORDER BY last_seen_ms DESC, channel, sender_id LIMIT ?2"
                    ))?
                    .query_map(params![channel, limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM presence
                         ORDER BY last_seen_ms DESC, channel, sender_id LIMIT ?1"
                    ))?
                    .query_map(params![limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(rows)
        })
        .await
    }
}
