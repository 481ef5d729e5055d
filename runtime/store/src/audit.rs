//! The audit log: notable gateway decisions (e.g. `queue.preempt`), kept past session deletion.

use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::error::check_json;
use crate::{Store, StoreError};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Dotted event kind, e.g. `queue.preempt`.
    pub kind: String,
    pub session_id: Option<String>,
    /// JSON text.
    pub detail: String,
    pub at_ms: i64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        kind: row.get(1)?,
        session_id: row.get(2)?,
        detail: row.get(3)?,
        at_ms: row.get(4)?,
    })
}

impl Store {
    /// Appends an audit entry; `detail` must be JSON text. Returns its id.
    pub async fn audit(
        &self,
        kind: &str,
        session_id: Option<&str>,
        detail: String,
        at_ms: i64,
    ) -> Result<i64, StoreError> {
        check_json("detail", &detail)?;
        let kind = kind.to_owned();
        let session_id = session_id.map(str::to_owned);
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO audit_log (kind, session_id, detail, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![kind, session_id, detail, at_ms])?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Up to `limit` entries (of one kind, or all), newest first (ties: later insert first).
    pub async fn audit_entries(
        &self,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let kind = kind.map(str::to_owned);
        self.call(move |conn| {
            let columns = "id, kind, session_id, detail, at_ms";
            let rows = match kind {
                Some(kind) => conn
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM audit_log WHERE kind = ?1
                         ORDER BY at_ms DESC, id DESC LIMIT ?2"
                    ))?
                    .query_map(params![kind, limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM audit_log ORDER BY at_ms DESC, id DESC LIMIT ?1"
                    ))?
                    .query_map(params![limit], from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(rows)
        })
        .await
    }
}
