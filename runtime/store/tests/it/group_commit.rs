//! Group commit and the in-memory history tail: many writers at once are all acknowledged and
//! all stored, in order per session; `history` answers the same from memory as from SQLite,
//! through appends, failed batches and deletes.

use std::sync::Arc;

use flynn_store::{NewMessage, Role, Store};

fn message(session: &str, content: String, at: i64) -> NewMessage {
    NewMessage {
        session_id: session.to_owned(),
        role: Role::User,
        content,
        attachments: None,
        created_at_ms: at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_acknowledged_and_stored_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_async(&dir.path().join("g.db")).await.unwrap());
    let mut tasks = Vec::new();
    for s in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let session = format!("t:s{s}");
            for i in 0..20 {
                store
                    .append_message(message(&session, format!("m{i}"), 1_700_000_000_000 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A second store on the file (no shared memory) sees everything.
    let other = Store::open_async(&dir.path().join("g.db")).await.unwrap();
    for s in 0..32 {
        let session = format!("t:s{s}");
        let from_disk: Vec<String> = other
            .history(&session, None)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        assert_eq!(from_disk, expected, "{session}");
        let from_memory: Vec<String> = store
            .history(&session, Some(20))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(from_memory, expected, "{session} from memory");
    }
}

/// What SQLite holds (no limit: never served from memory) against a limited, cached read.
async fn same_history(store: &Store, session: &str, limit: u32) {
    let all = store.history(session, None).await.unwrap();
    let skip = all.len().saturating_sub(limit as usize);
    let expected: Vec<_> = all.into_iter().skip(skip).collect();
    assert_eq!(
        store.history(session, Some(limit)).await.unwrap(),
        expected,
        "{session} limit {limit}"
    );
}

#[tokio::test]
async fn history_from_memory_matches_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(&dir.path().join("h.db")).await.unwrap();
    let at = 1_700_000_000_000;
    store
        .append_messages(
            (0..300)
                .map(|i| message("h:a", format!("m{i}"), at))
                .collect(),
        )
        .await
        .unwrap();
    for limit in [1, 50, 200, 256, 257, 1000] {
        same_history(&store, "h:a", limit).await;
    }
    // Appends after the tail was read reach it.
    store
        .append_message(message("h:a", "late".into(), at))
        .await
        .unwrap();
    same_history(&store, "h:a", 200).await;
    // A batch that fails is rolled back and leaves no trace in memory either.
    let failed = store
        .append_messages(vec![
            message("h:a", "kept out".into(), at),
            message("h:a", "bad time".into(), i64::MAX),
        ])
        .await;
    assert!(failed.is_err());
    same_history(&store, "h:a", 200).await;
    assert_eq!(
        store.history("h:a", Some(1)).await.unwrap()[0].content,
        "late"
    );
    // A short session is served whole; a deleted one is empty.
    store
        .append_message(message("h:b", "only".into(), at))
        .await
        .unwrap();
    same_history(&store, "h:b", 200).await;
    assert!(store.delete_session("h:b").await.unwrap());
    assert!(store.history("h:b", Some(200)).await.unwrap().is_empty());
    store
        .append_message(message("h:b", "again".into(), at))
        .await
        .unwrap();
    same_history(&store, "h:b", 200).await;
}

/// The bundled SQLite keeps a job's statement journal in memory up to 120 KiB (set in
/// `.cargo/config.toml`): with SQLite's default of 64 KiB an agent turn's start could spill it
/// to a temporary file, and the rest of its round then wrote every journaled page to that file.
#[tokio::test]
async fn statement_journal_spill() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(&dir.path().join("j.db")).await.unwrap();
    let options: Vec<String> = store
        .call(|c| {
            let mut stmt = c.prepare("PRAGMA compile_options")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert!(
        options.iter().any(|o| o == "STMTJRNL_SPILL=122880"),
        "the bundled SQLite was built without LIBSQLITE3_FLAGS from .cargo/config.toml: {options:?}"
    );
}

/// A job whose statement journal outgrows the in-memory threshold spills it to a file in one
/// write of the journal's only chunk; SQLite's unix VFS writes at most 128 KiB at once (a
/// larger chunk failed with "database or disk is full"), so the threshold must stay below that.
/// The second import of 1,000 messages into a database holding 1,000 journals more than
/// 128 KiB of existing pages.
#[tokio::test]
async fn a_job_spilling_its_statement_journal_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_async(&dir.path().join("s.db")).await.unwrap();
    for s in 0..2 {
        let session = format!("t:s{s}");
        let batch: Vec<NewMessage> = (0..1_000)
            .map(|i| message(&session, format!("message {i}"), 1_700_000_000_000 + i))
            .collect();
        store.append_messages(batch).await.unwrap();
    }
    let history = store.history("t:s1", None).await.unwrap();
    assert_eq!(history.len(), 1_000);
}
