//! The store's dedicated OS thread: it owns the one rusqlite `Connection` and runs jobs sent by
//! [`Store`] handles one at a time, so no blocking SQLite call ever runs on a tokio worker.
//! A job's result is sent back only after its transaction committed (SQLite commits before the
//! job returns), so an `Ok` seen by a caller is on disk: `synchronous=FULL` in WAL mode fsyncs
//! the log at every commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::migrations;

/// How long a statement waits for another process's lock before failing with SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

enum Command {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// Handle to the SQLite database. Cheap to clone; all clones talk to the same worker thread.
/// The thread ends when [`Store::close`] is called or when the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Command>,
    path: Arc<Path>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the folder and file if needed) and migrates the database at `path`, then
    /// starts the worker thread. This blocks the calling thread for the open and the migrations:
    /// call it before starting the runtime or use [`Store::open_async`] inside one.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = open_connection(path)?;
        Self::spawn(conn, path)
    }

    /// Like [`Store::open`], but opens and migrates on the worker thread and awaits the result,
    /// so it never blocks an async worker.
    pub async fn open_async(path: &Path) -> Result<Store, StoreError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let owned: PathBuf = path.to_path_buf();
        std::thread::Builder::new()
            .name("flynn-store".to_owned())
            .spawn(move || match open_connection(&owned) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(conn, rx);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store {
            tx,
            path: Arc::from(path),
        })
    }

    fn spawn(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        let (tx, rx) = mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("flynn-store".to_owned())
            .spawn(move || serve(conn, rx))
            .map_err(StoreError::Thread)?;
        Ok(Store {
            tx,
            path: Arc::from(path),
        })
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the worker thread with the connection and returns its result. Use a
    /// transaction for multi-statement writes and commit it inside `f`: a job that returns with
    /// a transaction open is rolled back and fails with [`StoreError::TransactionLeftOpen`].
    /// A panic in `f` becomes [`StoreError::JobPanicked`] and the store keeps serving.
    /// If the returned future is dropped after the job was queued, the job still runs.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                Ok(result) => result,
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(%message, "store job panicked");
                    Err(StoreError::JobPanicked(message))
                }
            };
            let result = if conn.is_autocommit() {
                result
            } else {
                tracing::error!("store job left a transaction open; rolling it back");
                if let Err(err) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(%err, "rollback of an abandoned transaction failed");
                }
                Err(StoreError::TransactionLeftOpen)
            };
            let _ = reply_tx.send(result);
        });
        self.tx
            .send(Command::Run(job))
            .map_err(|_| StoreError::Closed)?;
        reply_rx.await.map_err(|_| StoreError::Closed)?
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
                    "WAL checkpoint incomplete: another connection holds the database"
                );
            } else {
                tracing::debug!(log, done, "WAL checkpointed");
            }
            Ok(())
        })
        .await
    }

    /// Stops the worker after the jobs queued before this call and closes the connection.
    /// Later calls on any clone fail with [`StoreError::Closed`]. Returns once the connection is
    /// closed, so the file can be reopened or copied.
    pub async fn close(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Command::Close(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// The worker loop: runs jobs in order until closed or every handle is gone.
fn serve(mut conn: Connection, rx: mpsc::Receiver<Command>) {
    while let Ok(command) = rx.recv() {
        match command {
            Command::Run(job) => job(&mut conn),
            Command::Close(done) => {
                close_connection(conn);
                let _ = done.send(());
                return;
            }
        }
    }
    close_connection(conn);
}

fn close_connection(conn: Connection) {
    if let Err((_, err)) = conn.close() {
        tracing::error!(%err, "closing the database failed");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// Opens the file with the store's settings and brings its schema up to date.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    configure(&conn)?;
    let applied = migrations::migrate_to(&mut conn, migrations::latest_version())?;
    tracing::info!(path = %path.display(), ?applied, "store opened");
    Ok(conn)
}

/// Per-connection settings: WAL (readers never block the writer, commits append to the log),
/// `synchronous=FULL` (fsync at every commit: an acknowledged write survives power loss, not
/// only a crash), foreign keys (cascading deletes), and a busy timeout for other processes.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "the filesystem refused WAL mode; using the mode SQLite chose");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}
