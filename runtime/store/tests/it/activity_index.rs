//! Migration 8: the per-frontend session activity index and the per-channel presence index are
//! dropped (each was rewritten on every message or turn). A database an older build left keeps
//! its rows, and filtered pages list the same rows in the same order as before.

use crate::common::{DAY0, msg};
use flynn_store::migrations::{applied_versions, latest_version, migrate_to};
use flynn_store::{Role, SessionQuery, Store};

/// The names of the indexes on `table`.
async fn indexes(store: &Store, table: &'static str) -> Vec<String> {
    store
        .call(move |c| {
            let mut stmt = c.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1
                 AND sql IS NOT NULL ORDER BY name",
            )?;
            let names = stmt
                .query_map([table], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_v7_database_loses_the_filtered_activity_indexes_and_keeps_its_rows_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    {
        let mut conn = flynn_store::rusqlite::Connection::open(&path).unwrap();
        migrate_to(&mut conn, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (id, frontend, user_id, created_at_ms, last_active_at_ms)
             VALUES ('ws:a', 'ws', 'a', 1771200000000, 1771200000300),
                    ('tg:b', 'tg', 'b', 1771200000000, 1771200000200),
                    ('ws:c', 'ws', 'c', 1771200000000, 1771200000100);
             INSERT INTO presence
                 (channel, sender_id, sender_name, first_seen_ms, last_seen_ms, message_count)
             VALUES ('ws', 'a', NULL, 1, 30, 3), ('tg', 'b', 'Bea', 1, 20, 2),
                    ('ws', 'c', NULL, 1, 10, 1);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let versions = store.call(|c| applied_versions(c)).await.unwrap();
    assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
    assert_eq!(indexes(&store, "sessions").await, ["sessions_by_activity"]);
    assert_eq!(indexes(&store, "presence").await, ["presence_by_last_seen"]);

    // A message moves its session to the front of its frontend's page.
    store
        .append_message(msg("ws:c", Role::User, "after the upgrade", DAY0 + 1_000))
        .await
        .unwrap();
    let ws = SessionQuery {
        frontend: Some("ws".to_owned()),
        limit: 10,
        ..SessionQuery::default()
    };
    let (page, total) = store.list_sessions(ws.clone()).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
    assert_eq!((ids, total), (vec!["ws:c", "ws:a"], 2));
    let (page, _) = store
        .list_sessions(SessionQuery { offset: 1, ..ws })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, "ws:a");
    let (all, total) = store
        .list_sessions(SessionQuery {
            limit: 10,
            ..SessionQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!((ids, total), (vec!["ws:c", "ws:a", "tg:b"], 3));

    let senders = |rows: Vec<flynn_store::PresenceRecord>| {
        rows.into_iter()
            .map(|p| format!("{}:{}", p.channel, p.sender_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        senders(store.presence(Some("ws"), 10).await.unwrap()),
        ["ws:a", "ws:c"]
    );
    assert_eq!(
        senders(store.presence(None, 10).await.unwrap()),
        ["ws:a", "tg:b", "ws:c"]
    );
}
