//! The [`Store`] handle: a writer thread that owns the read-write connection, and a reader
//! thread with a second, query-only connection for long reads (analytics), so a dashboard
//! query never holds up message appends. WAL lets the reader run beside the writer, and
//! because every write commits before it is acknowledged, a read started after an `Ok` sees it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::migrations;
use crate::push_state::PushState;
use crate::recent::RecentMessages;
use crate::session_configs::SessionConfigs;
use crate::worker::{Durability, OnAbort, Worker, wal_path};

/// How long a statement waits for another connection's lock before failing with SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle to the SQLite database. Cheap to clone; all clones share the same two threads,
/// which end when [`Store::close`] is called or when the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    writer: Worker,
    reader: Worker,
    path: Arc<Path>,
    /// The last messages of recently active sessions (touched only on the writer thread).
    pub(crate) recent: Arc<RecentMessages>,
    /// Whether push subscriptions may exist (see `push.rs`).
    pub(crate) push_state: Arc<PushState>,
    /// The sessions' config overrides as last written (written only on the writer thread).
    pub(crate) session_configs: Arc<SessionConfigs>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the folder and file if needed) and migrates the database at `path`,
    /// then starts the worker threads. This blocks the calling thread for the open and the
    /// migrations: call it before starting the runtime, or use [`Store::open_async`] in one.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let views = Views::default();
        let (conn, durability) = open_writer(path)?;
        let writer = Worker::spawn("flynn-store-writer", conn, durability, views.on_abort())?;
        let reader = Worker::spawn(
            "flynn-store-reader",
            open_reader(path)?,
            Durability::PerCommit,
            no_views(),
        )?;
        Ok(views.store(writer, reader, path))
    }

    /// Like [`Store::open`], but opens and migrates on the worker threads and awaits them, so
    /// it never blocks an async worker.
    pub async fn open_async(path: &Path) -> Result<Store, StoreError> {
        let views = Views::default();
        let owned: PathBuf = path.to_path_buf();
        let writer = Worker::start(
            "flynn-store-writer",
            move || open_writer(&owned),
            views.on_abort(),
        )
        .await?;
        let owned: PathBuf = path.to_path_buf();
        let reader = Worker::start(
            "flynn-store-reader",
            move || Ok((open_reader(&owned)?, Durability::PerCommit)),
            no_views(),
        )
        .await?;
        Ok(views.store(writer, reader, path))
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the read-write connection on the writer thread and returns its result.
    /// Use a transaction for multi-statement writes and commit it inside `f`: a job that
    /// returns with a transaction open is rolled back and fails with
    /// [`StoreError::TransactionLeftOpen`]. A panic in `f` becomes [`StoreError::JobPanicked`]
    /// and the store keeps serving. If the returned future is dropped after the job was
    /// queued, the job still runs.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.call(f).await
    }

    /// Like [`Store::call`], for the hot writes (message appends, a turn's start): `write`
    /// runs inside the writer's batch transaction, which the jobs of one group-commit round
    /// share (see `round.rs`), in a savepoint of its own, and must not begin, commit or roll
    /// back a transaction; `then` gets its result once it succeeded and updates the in-memory
    /// views.
    pub(crate) async fn call_batched<T, R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        then: impl FnOnce(T) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        self.writer.call_batched(write, then).await
    }

    /// Runs `f` with the query-only connection on the reader thread, beside the writer: for
    /// long reads that must not delay writes. It sees every write acknowledged before it
    /// started; writing through it fails (`PRAGMA query_only`).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.reader.call(f).await
    }

    /// Checkpoints the WAL into the main file and truncates it (`wal_checkpoint(TRUNCATE)`).
    /// Used at shutdown so the database is one self-contained file; data is durable without it.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            let (busy, log, done): (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if busy != 0 {
                tracing::warn!(
                    log,
                    done,
                    "WAL checkpoint incomplete: a reader holds an old snapshot"
                );
            } else {
                tracing::debug!(log, done, "WAL checkpointed");
            }
            Ok(())
        })
        .await
    }

    /// Stops both threads after the jobs queued before this call and closes the connections.
    /// Later calls on any clone fail with [`StoreError::Closed`]. Returns once both are closed,
    /// so the file can be reopened or copied.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The store's in-memory views of what the writer committed, made before the threads so the
/// writer can clear them when a batch is rolled back.
#[derive(Default)]
struct Views {
    recent: Arc<RecentMessages>,
    push_state: Arc<PushState>,
    session_configs: Arc<SessionConfigs>,
}

impl Views {
    /// What the writer runs after a batch was rolled back: forget what the batch's jobs put
    /// in memory (both views are refilled from SQLite on demand). `push_state` needs nothing:
    /// "maybe" is always safe.
    fn on_abort(&self) -> OnAbort {
        let recent = self.recent.clone();
        let configs = self.session_configs.clone();
        Arc::new(move || {
            recent.clear();
            configs.clear();
        })
    }

    fn store(self, writer: Worker, reader: Worker, path: &Path) -> Store {
        Store {
            writer,
            reader,
            path: Arc::from(path),
            recent: self.recent,
            push_state: self.push_state,
            session_configs: self.session_configs,
        }
    }
}

/// The reader never batches: nothing to clear.
fn no_views() -> OnAbort {
    Arc::new(|| {})
}

/// Opens the read-write connection and brings the schema up to date. In WAL mode its commits
/// then stop syncing one by one: a sync thread syncs the WAL once per round of jobs before
/// answering them (group commit, see `worker.rs`), so an acknowledged write is still durable.
fn open_writer(path: &Path) -> Result<(Connection, Durability), StoreError> {
    // The reader must see the writer's database, so it has to be a file both can open.
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the store needs a database file path (an in-memory database cannot be shared \
                 by its writer and reader connections)",
            ),
        });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open_with_flags(path, flags())?;
    let wal = configure(&conn)?;
    let applied = migrations::migrate_to(&mut conn, migrations::latest_version())?;
    tracing::info!(path = %path.display(), ?applied, "store opened");
    let durability = if wal {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        Durability::GroupCommit {
            wal: wal_path(path),
        }
    } else {
        Durability::PerCommit
    };
    Ok((conn, durability))
}

/// Opens the query-only connection (after the writer created and migrated the file).
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags())?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// WAL frames after which a commit checkpoints (copies the WAL's pages into the database
/// file, syncing both): SQLite's default is 1,000. Under a steady load of turns most pages a
/// checkpoint copies are the same hot pages each time (the sessions' rows and activity index,
/// the rightmost leaves of `messages` and its indexes, the daily rollups): one every 4,000
/// frames copies each of them once for four times as many turns (checkpointed pages per WAL
/// frame 16 % -> 8 %), with a quarter of the checkpoint syncs. 10,000 saved no more CPU and
/// made each checkpoint's stall on the writer thread long enough to raise a turn's p99. The
/// WAL file grows to about 16 MiB before it is reused from its start.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4_000;

/// Read-write, created if missing; no URI parsing, so a path is always a file path.
fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Per-connection settings: WAL (readers never block the writer, commits append to the log),
/// `synchronous=FULL` (fsync at every commit: an acknowledged write survives power loss, not
/// only a crash; the writer relaxes it once it syncs batches itself), foreign keys (cascading
/// deletes), and a busy timeout for other connections. Returns whether the database is in
/// WAL mode.
fn configure(conn: &Connection) -> Result<bool, StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    let wal = mode.eq_ignore_ascii_case("wal");
    if !wal {
        tracing::warn!(%mode, "the filesystem refused WAL mode; using the mode SQLite chose");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Room for every statement the store prepares with `prepare_cached`.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(wal)
}
