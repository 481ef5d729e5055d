//! The memory namespace: named documents such as context checkpoints, one per namespace.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// A stored memory document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRecord {
    pub namespace: String,
    /// Free text (often JSON); the store does not interpret it.
    pub content: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Store {
    /// Writes the namespace's content, replacing any previous one; the creation time of an
    /// existing namespace is kept.
    pub async fn save_memory(
        &self,
        namespace: &str,
        content: String,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let namespace = namespace.to_owned();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO memory (namespace, content, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (namespace) DO UPDATE SET
                     content = excluded.content, updated_at_ms = excluded.updated_at_ms",
                params![namespace, content, at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// The namespace's document, if any.
    pub async fn memory(&self, namespace: &str) -> Result<Option<MemoryRecord>, StoreError> {
        let namespace = namespace.to_owned();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT namespace, content, created_at_ms, updated_at_ms
                     FROM memory WHERE namespace = ?1",
                    [&namespace],
                    |r| {
                        Ok(MemoryRecord {
                            namespace: r.get(0)?,
                            content: r.get(1)?,
                            created_at_ms: r.get(2)?,
                            updated_at_ms: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }
}
