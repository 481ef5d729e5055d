//! Migrations, connection settings, reopening, and the worker thread's behaviour.

use crate::common::{DAY0, count, msg, temp_store};
use flynn_store::migrations::{self, applied_versions, latest_version, migrate_to};
use flynn_store::{Role, Store, StoreError, rusqlite};

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn store_is_send_sync_clone() {
    assert_send_sync_clone::<Store>();
}

#[tokio::test]
async fn fresh_file_is_created_migrated_and_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/gateway.db");
    let store = Store::open_async(&path).await.unwrap();
    assert!(path.exists());
    assert_eq!(store.path(), path);
    let (versions, user_version, mode, sync, fk, busy, checkpoint) = store
        .call(|conn| {
            let pragma = |name: &str| -> Result<i64, rusqlite::Error> {
                conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            };
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            Ok((
                applied_versions(conn)?,
                pragma("user_version")?,
                mode,
                pragma("synchronous")?,
                pragma("foreign_keys")?,
                pragma("busy_timeout")?,
                pragma("wal_autocheckpoint")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
    assert_eq!(user_version, i64::from(latest_version()));
    assert_eq!(mode, "wal");
    // NORMAL: the writer thread syncs the WAL itself, once per batch of jobs (group commit).
    assert_eq!(sync, 1, "synchronous=NORMAL on the writer");
    assert_eq!(fk, 1);
    assert_eq!(busy, 5_000);
    // A checkpoint every 4,000 WAL frames instead of SQLite's 1,000 (see `store.rs`).
    assert_eq!(checkpoint, 4_000);
    let integrity: String = store
        .call(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[tokio::test]
async fn reopening_keeps_data_and_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.db");
    let applied_at = |store: Store| async move {
        store
            .call(|c| {
                let mut stmt = c.prepare(
                    "SELECT version, applied_at_ms FROM schema_migrations ORDER BY version",
                )?;
                Ok(stmt
                    .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap()
    };
    let store = Store::open(&path).unwrap();
    store
        .append_message(msg("ws:keep", Role::User, "remember kubernetes", DAY0))
        .await
        .unwrap();
    store
        .save_memory("ns", "checkpoint".into(), 5)
        .await
        .unwrap();
    let before = applied_at(store.clone()).await;
    store.close().await;

    let store = Store::open(&path).unwrap();
    assert_eq!(applied_at(store.clone()).await, before);
    let history = store.history("ws:keep", None).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].content, "remember kubernetes");
    assert_eq!(
        store.memory("ns").await.unwrap().unwrap().content,
        "checkpoint"
    );
    assert_eq!(
        store
            .session("ws:keep")
            .await
            .unwrap()
            .unwrap()
            .message_count,
        1
    );
}

/// A database left by a build that knew only migration 1 is upgraded in place: the new table
/// appears and is back-filled from the existing user messages.
#[tokio::test]
async fn an_old_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(migrate_to(&mut conn, 1).unwrap(), [1]);
        conn.execute_batch(
            "INSERT INTO sessions (id, frontend, user_id, created_at_ms, last_active_at_ms,
                                   last_message_at_ms, message_count)
             VALUES ('telegram:1', 'telegram', '1', 1771200000000, 1771200000001, 1771200000001, 2);
             INSERT INTO messages (session_id, role, content, created_at_ms, day) VALUES
               ('telegram:1', 'user', 'Postgres replication lag again', 1771200000000, '2026-02-16'),
               ('telegram:1', 'assistant', 'Postgres looks fine', 1771200000001, '2026-02-16');",
        )
        .unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'message_terms'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
    let store = Store::open(&path).unwrap();
    let versions = store.call(|c| applied_versions(c)).await.unwrap();
    // Every later migration is applied too (their number grows as branches add them).
    let all: Vec<u32> = (1..=latest_version()).collect();
    assert_eq!(versions, all);
    let history = store.history("telegram:1", None).await.unwrap();
    assert_eq!(history.len(), 2);
    let a = store.session_analytics(0, 10).await.unwrap();
    let topics: Vec<_> = a
        .top_topics
        .iter()
        .map(|t| (t.topic.as_str(), t.occurrences))
        .collect();
    assert_eq!(
        topics,
        [("postgres", 1), ("replication", 1)],
        "back-filled from user messages only"
    );
    // The daily rollup was back-filled too (since = 0 reads whole days from the rollups).
    assert_eq!(a.daily.len(), 1);
    assert_eq!(
        (
            a.daily[0].day.as_str(),
            a.daily[0].sessions,
            a.daily[0].messages
        ),
        ("2026-02-16", 1, 2)
    );
    assert_eq!(a.top_sessions[0].session_id, "telegram:1");
    assert_eq!(a.top_sessions[0].last_activity_ms, 1_771_200_000_001);
    assert_eq!((a.total_sessions, a.total_messages), (1, 2));
    // New appends keep extracting terms after the upgrade.
    store
        .append_message(msg("telegram:1", Role::User, "postgres vacuum", DAY0 + 5))
        .await
        .unwrap();
    assert_eq!(count(&store, "message_terms").await, 4);
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let store = Store::open(&path).unwrap();
    store
        .call(|c| {
            c.execute(
                "INSERT INTO schema_migrations VALUES (99, 'from the future', 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().await;
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, supported } if supported == latest_version()),
        "{err}"
    );
    assert!(err.to_string().contains("newer gateway"));
    assert!(matches!(
        Store::open_async(&path).await.unwrap_err(),
        StoreError::SchemaTooNew { .. }
    ));
}

#[tokio::test]
async fn migrations_are_numbered_in_order() {
    let versions: Vec<u32> = migrations::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, (1..=latest_version()).collect::<Vec<_>>());
}

#[tokio::test]
async fn opening_a_path_that_cannot_be_a_database_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let err = Store::open(&blocker.join("gateway.db")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    for path in ["", ":memory:"] {
        let err = Store::open(std::path::Path::new(path)).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(err.to_string().contains("database file path"), "{err}");
    }
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    assert!(matches!(
        Store::open(&garbage).unwrap_err(),
        StoreError::Sqlite(_)
    ));
}

#[tokio::test]
async fn call_survives_panics_and_rolls_back_abandoned_transactions() {
    let (_dir, store) = temp_store().await;
    let err = store
        .call(|_conn| -> Result<(), StoreError> { panic!("boom in a job") })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::JobPanicked(m) if m.contains("boom")),
        "{err}"
    );

    let err = store
        .call(|conn| {
            conn.execute_batch("BEGIN; INSERT INTO memory VALUES ('leak', 'x', 1, 1);")?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TransactionLeftOpen), "{err}");
    assert!(
        store.memory("leak").await.unwrap().is_none(),
        "the open transaction was rolled back"
    );

    // The worker still serves.
    assert_eq!(
        store
            .call(|c| Ok(c.query_row("SELECT 40 + 2", [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap(),
        42
    );
}

#[tokio::test]
async fn close_stops_every_clone() {
    let (_dir, store) = temp_store().await;
    let clone = store.clone();
    store.close().await;
    assert!(matches!(
        clone.ensure_session("ws:x", 1).await.unwrap_err(),
        StoreError::Closed
    ));
    assert!(matches!(
        store.flush().await.unwrap_err(),
        StoreError::Closed
    ));
    assert!(matches!(
        store.read(|_| Ok(())).await.unwrap_err(),
        StoreError::Closed
    ));
    assert!(matches!(
        store.session_analytics(0, 1).await.unwrap_err(),
        StoreError::Closed
    ));
    store.close().await; // closing twice is harmless
}

#[tokio::test]
async fn flush_checkpoints_and_truncates_the_wal() {
    let (dir, store) = temp_store().await;
    for i in 0..20 {
        store
            .append_message(msg("ws:f", Role::User, "some words here", i))
            .await
            .unwrap();
    }
    let wal = dir.path().join("gateway.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    store.flush().await.unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    assert_eq!(store.history("ws:f", None).await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_are_serialised_without_loss() {
    let (_dir, store) = temp_store().await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_message(msg("ws:many", Role::User, &format!("n{i}"), i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64);
    assert_eq!(
        store
            .session("ws:many")
            .await
            .unwrap()
            .unwrap()
            .message_count,
        64
    );
}

/// Two handles on one file (as two processes would have) see each other's commits.
#[tokio::test]
async fn two_stores_on_one_file_share_committed_data() {
    let (dir, a) = temp_store().await;
    let b = Store::open_async(&dir.path().join("gateway.db"))
        .await
        .unwrap();
    a.append_message(msg("ws:shared", Role::User, "from a", 1))
        .await
        .unwrap();
    b.append_message(msg("ws:shared", Role::User, "from b", 2))
        .await
        .unwrap();
    let seen: Vec<_> = a
        .history("ws:shared", None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(seen, ["from a", "from b"]);
    assert_eq!(
        b.session("ws:shared").await.unwrap().unwrap().message_count,
        2
    );
}

/// Analytics runs on the reader thread: it completes while the writer is held busy by a job
/// that waits for the analytics to finish (on one thread this would never end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_does_not_wait_for_the_writer() {
    let (_dir, store) = temp_store().await;
    store
        .append_message(msg("ws:r", Role::User, "kubernetes", DAY0))
        .await
        .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (busy_tx, busy_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = store.clone();
    let blocked = tokio::spawn(async move {
        writer
            .call(move |_conn| {
                let _ = busy_tx.send(());
                release_rx.recv().map_err(|_| StoreError::Closed)
            })
            .await
    });
    busy_rx.await.unwrap();
    let analytics = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        store.session_analytics(0, 5),
    )
    .await
    .expect("analytics waited for the busy writer");
    assert_eq!(analytics.unwrap().total_messages, 1);
    release_tx.send(()).unwrap();
    blocked.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_reader_sees_acknowledged_writes_and_cannot_write() {
    let (_dir, store) = temp_store().await;
    for i in 0..10 {
        store
            .append_message(msg("ws:rw", Role::User, "x", i))
            .await
            .unwrap();
        let seen: i64 = store
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(seen, i + 1);
    }
    let err = store
        .read(|c| Ok(c.execute("DELETE FROM messages", [])?))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    assert_eq!(count(&store, "messages").await, 10);
}

/// The store's threads run under `SCHED_BATCH` (policy 3 in `/proc/.../stat`), so a job sent
/// by an async worker does not preempt it (see `sched.rs`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn store_threads_run_under_sched_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(&dir.path().join("p.db")).await.unwrap();
    // A write, so the sync thread has certainly started.
    store.ensure_session("t:s", 1).await.unwrap();
    // Policies by thread name. Other tests run in this process at the same time, and a thread
    // of theirs may be listed before it has set its own policy, so each role must have a
    // thread under SCHED_BATCH (this store's, at least) rather than every thread at once.
    let mut policies: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis start at field 3; the policy is 41.
        let policy = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(41 - 3))
            .unwrap_or_default()
            .to_owned();
        if comm.starts_with("flynn-store-") {
            policies
                .entry(comm.trim().to_owned())
                .or_default()
                .push(policy);
        }
    }
    for name in ["flynn-store-wri", "flynn-store-rea", "flynn-store-syn"] {
        let batch = policies
            .get(name)
            .is_some_and(|p| p.iter().any(|p| p == "3"));
        assert!(batch, "no thread {name} under SCHED_BATCH: {policies:?}");
    }
    store.close().await;
}
