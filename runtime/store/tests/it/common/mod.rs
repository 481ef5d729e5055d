//! Helpers shared by the integration tests.

use flynn_store::{NewMessage, Role, Store};
use tempfile::TempDir;

/// 2026-02-16T00:00:00Z.
pub const DAY0: i64 = 1_771_200_000_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// A fresh store in a new temp dir (keep the dir alive as long as the store).
pub async fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(&dir.path().join("gateway.db"))
        .await
        .unwrap();
    (dir, store)
}

pub fn msg(session: &str, role: Role, content: &str, at: i64) -> NewMessage {
    NewMessage {
        session_id: session.to_owned(),
        role,
        content: content.to_owned(),
        attachments: None,
        created_at_ms: at,
    }
}

/// Rows of `table` (an ad-hoc query through `Store::call`).
pub async fn count(store: &Store, table: &'static str) -> u64 {
    store
        .call(move |conn| {
            Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        })
        .await
        .unwrap()
}
