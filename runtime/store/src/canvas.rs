//! Canvas artifacts: session-scoped documents a client renders, upserted by artifact id.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::{check_json, check_json_opt};
use crate::{Store, StoreError, sessions};

/// A `canvas.put`: the whole artifact (a put replaces every field but the creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanvasPut {
    pub session_id: String,
    pub artifact_id: String,
    /// The protocol's `type`.
    pub kind: String,
    pub title: Option<String>,
    /// JSON text.
    pub content: String,
    /// JSON text.
    pub metadata: Option<String>,
    pub now_ms: i64,
}

/// A stored canvas artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanvasArtifact {
    pub session_id: String,
    pub artifact_id: String,
    pub kind: String,
    pub title: Option<String>,
    pub content: String,
    pub metadata: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const COLUMNS: &str =
    "session_id, artifact_id, kind, title, content, metadata, created_at_ms, updated_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CanvasArtifact> {
    Ok(CanvasArtifact {
        session_id: row.get(0)?,
        artifact_id: row.get(1)?,
        kind: row.get(2)?,
        title: row.get(3)?,
        content: row.get(4)?,
        metadata: row.get(5)?,
        created_at_ms: row.get(6)?,
        updated_at_ms: row.get(7)?,
    })
}

fn get(
    conn: &Connection,
    session_id: &str,
    artifact_id: &str,
) -> rusqlite::Result<Option<CanvasArtifact>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM canvas_artifacts WHERE session_id = ?1 AND artifact_id = ?2"
    ))?
    .query_row(params![session_id, artifact_id], from_row)
    .optional()
}

impl Store {
    /// Creates or replaces an artifact (creating its session if missing). An existing
    /// artifact keeps its `created_at_ms`; `updated_at_ms` becomes `now_ms`. Returns the stored
    /// artifact and whether it was created.
    ///
    /// A new artifact is refused with [`StoreError::CanvasFull`] when the session already holds
    /// `max_per_session` artifacts; replacing an existing one always works. The count and the
    /// insert happen in one write transaction, so puts in flight together cannot overshoot.
    pub async fn canvas_put(
        &self,
        put: CanvasPut,
        max_per_session: u32,
    ) -> Result<(CanvasArtifact, bool), StoreError> {
        check_json("content", &put.content)?;
        check_json_opt("metadata", put.metadata.as_deref())?;
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            sessions::ensure(&tx, &put.session_id, put.now_ms)?;
            let existed = get(&tx, &put.session_id, &put.artifact_id)?.is_some();
            if !existed {
                let count: u64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM canvas_artifacts WHERE session_id = ?1")?
                    .query_row([&put.session_id], |row| row.get(0))?;
                if count >= u64::from(max_per_session) {
                    // Dropping `tx` rolls back the session row `ensure` may have added.
                    return Err(StoreError::CanvasFull {
                        session_id: put.session_id,
                        count,
                        limit: max_per_session,
                    });
                }
            }
            let stored = tx
                .prepare_cached(&format!(
                    "INSERT INTO canvas_artifacts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (session_id, artifact_id) DO UPDATE SET
                         kind = excluded.kind, title = excluded.title,
                         content = excluded.content, metadata = excluded.metadata,
                         updated_at_ms = excluded.updated_at_ms
                     RETURNING {COLUMNS}"
                ))?
                .query_row(
                    params![
                        put.session_id,
                        put.artifact_id,
                        put.kind,
                        put.title,
                        put.content,
                        put.metadata,
                        put.now_ms
                    ],
                    from_row,
                )?;
            tx.commit()?;
            Ok((stored, !existed))
        })
        .await
    }

    /// One artifact, if stored.
    pub async fn canvas_get(
        &self,
        session_id: &str,
        artifact_id: &str,
    ) -> Result<Option<CanvasArtifact>, StoreError> {
        let (session_id, artifact_id) = (session_id.to_owned(), artifact_id.to_owned());
        self.call(move |conn| Ok(get(conn, &session_id, &artifact_id)?))
            .await
    }

    /// Up to `limit` artifacts of the session, most recently updated first; equal update
    /// times are ordered by artifact id ascending.
    pub async fn canvas_list(
        &self,
        session_id: &str,
        limit: u32,
    ) -> Result<Vec<CanvasArtifact>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM canvas_artifacts WHERE session_id = ?1
                 ORDER BY updated_at_ms DESC, artifact_id LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![session_id, limit], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Deletes one artifact; returns whether it existed.
    pub async fn canvas_delete(
        &self,
        session_id: &str,
        artifact_id: &str,
    ) -> Result<bool, StoreError> {
        let (session_id, artifact_id) = (session_id.to_owned(), artifact_id.to_owned());
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM canvas_artifacts WHERE session_id = ?1 AND artifact_id = ?2",
                params![session_id, artifact_id],
            )? == 1)
        })
        .await
    }

    /// Deletes every artifact of the session; returns how many.
    pub async fn canvas_clear(&self, session_id: &str) -> Result<u64, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| {
            let n = conn.execute(
                "DELETE FROM canvas_artifacts WHERE session_id = ?1",
                [&session_id],
            )?;
            Ok(n as u64)
        })
        .await
    }
}
