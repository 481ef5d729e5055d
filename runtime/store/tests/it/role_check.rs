//! Migration 7: the `messages` role check rewritten from an `IN` list (a temporary b-tree built
//! on every insert) to comparisons, on a database an older build left, keeping its rows and
//! still refusing an unknown role.

use crate::common::{DAY0, msg};
use flynn_store::migrations::{applied_versions, latest_version, migrate_to};
use flynn_store::{Role, Store, StoreError};

#[tokio::test]
async fn an_old_database_gets_the_role_check_as_comparisons_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    {
        let mut conn = flynn_store::rusqlite::Connection::open(&path).unwrap();
        migrate_to(&mut conn, 6).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (id, frontend, user_id, created_at_ms, last_active_at_ms)
             VALUES ('ws:old', 'ws', 'old', 1771200000000, 1771200000000);
             INSERT INTO messages (session_id, role, content, created_at_ms, day)
             VALUES ('ws:old', 'user', 'before the upgrade', 1771200000000, '2026-02-16');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let versions = store.call(|c| applied_versions(c)).await.unwrap();
    assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
    let sql: String = store
        .call(|c| {
            Ok(c.query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'messages'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert!(
        sql.contains("role = 'user' OR role = 'assistant' OR role = 'system' OR role = 'tool'")
            && !sql.contains("role IN"),
        "{sql}"
    );
    // The rows are there, appends work, and an unknown role is still refused.
    store
        .append_message(msg("ws:old", Role::Assistant, "after", DAY0))
        .await
        .unwrap();
    let history = store.history("ws:old", None).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["before the upgrade", "after"]);
    let refused = store
        .call(|c| {
            c.execute(
                "INSERT INTO messages (session_id, role, content, created_at_ms, day)
                 VALUES ('ws:old', 'robot', 'x', 1, '1970-01-01')",
                [],
            )?;
            Ok(())
        })
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Sqlite(e)) if e.to_string().contains("CHECK")),
        "{refused:?}"
    );
    store.close().await;
    // A second open (a new connection reading the rewritten schema) applies nothing again.
    let again = Store::open(&path).unwrap();
    let versions = again.call(|c| applied_versions(c)).await.unwrap();
    assert_eq!(versions.len(), latest_version() as usize);
    assert_eq!(again.history("ws:old", None).await.unwrap().len(), 2);
}
