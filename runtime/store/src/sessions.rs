//! Sessions: one row per conversation, keyed by the protocol's session id.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::check_json_opt;
use crate::{Store, StoreError};

/// The frontend given to ids without a `frontend:` prefix (e.g. `default`).
pub const UNKNOWN_FRONTEND: &str = "unknown";

/// Splits a session id `frontend:userId` at its first `:`. An id without `:` (or with nothing
/// before it) has frontend [`UNKNOWN_FRONTEND`] and the whole id (or the part after `:`) as
/// user id; the user id may itself contain `:` (`ws:abc:1` is frontend `ws`, user `abc:1`).
pub fn split_session_id(id: &str) -> (&str, &str) {
    match id.split_once(':') {
        Some(("", user)) => (UNKNOWN_FRONTEND, user),
        Some((frontend, user)) => (frontend, user),
        None => (UNKNOWN_FRONTEND, id),
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub frontend: String,
    pub user_id: String,
    pub created_at_ms: i64,
    /// Latest of creation, [`Store::touch_session`] and message times.
    pub last_active_at_ms: i64,
    pub last_message_at_ms: Option<i64>,
    pub message_count: u64,
    /// Per-session configuration overrides, JSON text.
    pub config: Option<String>,
}

/// Filter and page for [`Store::list_sessions`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionQuery {
    /// Only sessions of this frontend.
    pub frontend: Option<String>,
    /// Only sessions with one of these ids (e.g. those live on this gateway).
    pub only_ids: Option<Vec<String>>,
    pub limit: u32,
    pub offset: u32,
}

const COLUMNS: &str = "id, frontend, user_id, created_at_ms, last_active_at_ms, \
                       last_message_at_ms, message_count, config";

fn from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        frontend: row.get(1)?,
        user_id: row.get(2)?,
        created_at_ms: row.get(3)?,
        last_active_at_ms: row.get(4)?,
        last_message_at_ms: row.get(5)?,
        message_count: row.get(6)?,
        config: row.get(7)?,
    })
}

/// Inserts the session if it does not exist; returns whether it was created. Used inside the
/// transactions of every write that belongs to a session.
pub(crate) fn ensure(conn: &Connection, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let (frontend, user_id) = split_session_id(id);
    let created = conn
        .prepare_cached(
            "INSERT INTO sessions (id, frontend, user_id, created_at_ms, last_active_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![id, frontend, user_id, now_ms])?;
    Ok(created == 1)
}

/// The session's record, read with the caller's connection.
pub(crate) fn read_session(
    conn: &Connection,
    id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    // Cached: every agent turn reads its session (config, queue policy).
    const SQL: &str = "SELECT id, frontend, user_id, created_at_ms, last_active_at_ms, \
                       last_message_at_ms, message_count, config FROM sessions WHERE id = ?1";
    Ok(conn
        .prepare_cached(SQL)?
        .query_row([id], from_row)
        .optional()?)
}

impl Store {
    /// Creates the session if missing; returns `true` when it was created. An existing session
    /// is left as it is (call [`Store::touch_session`] to mark a resume as activity).
    pub async fn ensure_session(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| ensure(conn, &id, now_ms)).await
    }

    /// The session, if stored.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        let configs = self.session_configs.clone();
        self.call(move |conn| {
            let record = read_session(conn, &id)?;
            configs.set(&id, record.as_ref().and_then(|r| r.config.as_deref()));
            Ok(record)
        })
        .await
    }

    /// The session's config overrides (JSON text) as last read or written on this store, when
    /// known (`Some(None)`: none), without a trip to the writer thread; `None` when not known,
    /// in which case [`Store::session`] reads them (and remembers them for the next call).
    pub fn known_session_config(&self, id: &str) -> Option<Option<Arc<str>>> {
        self.session_configs.get(id)
    }

    /// One page of sessions, most recently active first (ties by id), and the number of
    /// sessions matching the filter regardless of the page.
    pub async fn list_sessions(
        &self,
        query: SessionQuery,
    ) -> Result<(Vec<SessionRecord>, u64), StoreError> {
        let ids_json = query
            .only_ids
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| StoreError::InvalidJson {
                field: "only_ids",
                source,
            })?;
        self.call(move |conn| {
            // Only the filters given appear in the SQL. A frontend filter walks the activity
            // index skipping other frontends (migration 8 dropped the per-frontend index,
            // which every message had to rewrite).
            let mut clauses = Vec::new();
            let mut args: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
            if let Some(frontend) = &query.frontend {
                clauses.push("frontend = :frontend");
                args.push((":frontend", frontend));
            }
            if let Some(ids) = &ids_json {
                clauses.push("id IN (SELECT value FROM json_each(:ids))");
                args.push((":ids", ids));
            }
            let filter = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let total: u64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM sessions {filter}"),
                args.as_slice(),
                |r| r.get(0),
            )?;
            args.push((":limit", &query.limit));
            args.push((":offset", &query.offset));
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM sessions {filter}
                 ORDER BY last_active_at_ms DESC, id LIMIT :limit OFFSET :offset"
            ))?;
            let rows = stmt
                .query_map(args.as_slice(), from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, total))
        })
        .await
    }

    /// Deletes the session with its messages, tool runs and canvas artifacts (foreign-key
    /// cascades, one transaction). Returns whether it existed.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let recent = self.recent.clone();
        let configs = self.session_configs.clone();
        self.call(move |conn| {
            let deleted = conn.execute("DELETE FROM sessions WHERE id = ?1", [&id])? == 1;
            recent.forget(&id);
            configs.forget(&id);
            Ok(deleted)
        })
        .await
    }

    /// Replaces the session's config overrides (JSON text; `None` clears them). Returns whether
    /// the session exists.
    pub async fn set_session_config(
        &self,
        id: &str,
        config: Option<String>,
    ) -> Result<bool, StoreError> {
        check_json_opt("config", config.as_deref())?;
        let id = id.to_owned();
        let configs = self.session_configs.clone();
        self.call(move |conn| {
            let updated = conn.execute(
                "UPDATE sessions SET config = ?2 WHERE id = ?1",
                params![id, config],
            )? == 1;
            if updated {
                configs.set(&id, config.as_deref());
            }
            Ok(updated)
        })
        .await
    }

    /// Records activity on the session (last activity never moves backwards). Returns whether
    /// the session exists.
    pub async fn touch_session(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| {
            Ok(conn.execute(
                "UPDATE sessions SET last_active_at_ms = MAX(last_active_at_ms, ?2) WHERE id = ?1",
                params![id, now_ms],
            )? == 1)
        })
        .await
    }
}
