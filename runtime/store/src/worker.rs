//! A dedicated OS thread that owns one rusqlite `Connection` and runs jobs sent to it one at a
//! time, so no blocking SQLite call ever runs on a tokio worker. A job's reply is sent only
//! after the job returned, and a job that left a transaction open is rolled back and fails,
//! so an `Ok` seen by a caller means the job's writes are committed.
//!
//! **Group commit.** The writer's connection commits with `synchronous=NORMAL` (no fsync per
//! commit) and the thread makes commits durable itself: it takes every job that is waiting,
//! runs them one after another (each in its own transaction, as before), then syncs the WAL
//! file once for all of them, and only then answers them. So a caller still sees `Ok` only
//! once its write survives a power loss, but fifty turns committing at the same moment cost
//! one fsync instead of fifty. A job that committed nothing (a read) adds no sync; a batch
//! whose sync fails answers every job that wrote with [`StoreError::Sync`].

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// Most jobs run before one sync: bounds how long the first job of a burst waits for its
/// answer while later ones run.
const MAX_BATCH: usize = 256;

/// What a job leaves behind: the answer to send once the batch is durable, told whether the
/// sync that covers the job's writes failed.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send + 'static>;
type Job = Box<dyn FnOnce(&mut Connection) -> Answer + Send + 'static>;

enum Command {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// How the thread makes commits durable.
pub(crate) enum Durability {
    /// Each commit syncs itself (`synchronous=FULL`, or a connection that never writes).
    PerCommit,
    /// Commits do not sync (`synchronous=NORMAL` in WAL mode); the thread syncs this WAL file
    /// once per batch of jobs before answering them.
    GroupCommit { wal: PathBuf },
}

/// Handle to one worker thread; clones share the thread, which ends on [`Worker::close`] or
/// when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Worker {
    tx: mpsc::Sender<Command>,
}

impl Worker {
    /// Starts a thread serving the already opened `conn`.
    pub(crate) fn spawn(
        name: &str,
        conn: Connection,
        durability: Durability,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(conn, durability, rx))
            .map_err(StoreError::Thread)?;
        Ok(Worker { tx })
    }

    /// Starts a thread that opens its connection with `open` first, and awaits that open, so
    /// opening never blocks the caller's async worker.
    pub(crate) async fn start(
        name: &str,
        open: impl FnOnce() -> Result<(Connection, Durability), StoreError> + Send + 'static,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || match open() {
                Ok((conn, durability)) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(conn, durability, rx);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Worker { tx })
    }

    /// Runs `f` on the thread and returns its result (see [`crate::Store::call`]).
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = run_job(conn, f);
            Box::new(move |sync_failure: Option<&StoreError>| {
                let result = match sync_failure {
                    Some(failure) => Err(StoreError::Sync(failure.to_string())),
                    None => result,
                };
                let _ = reply_tx.send(result);
            })
        });
        self.tx
            .send(Command::Run(job))
            .map_err(|_| StoreError::Closed)?;
        reply_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the thread after the jobs queued before this call and waits for the connection
    /// to close. Jobs queued later fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Command::Close(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// Runs one job: a panic becomes an error, and a transaction the job left open is rolled back.
fn run_job<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(%message, "store job panicked");
            Err(StoreError::JobPanicked(message))
        }
    };
    if conn.is_autocommit() {
        result
    } else {
        tracing::error!("store job left a transaction open; rolling it back");
        if let Err(err) = conn.execute_batch("ROLLBACK") {
            tracing::error!(%err, "rollback of an abandoned transaction failed");
        }
        Err(StoreError::TransactionLeftOpen)
    }
}

/// The WAL file, opened once, synced once per batch that committed.
struct WalSync {
    path: PathBuf,
    file: Option<File>,
}

impl WalSync {
    fn sync(&mut self) -> Result<(), StoreError> {
        let failed =
            |source: std::io::Error| StoreError::Sync(format!("{}: {source}", self.path.display()));
        if self.file.is_none() {
            let file = File::open(&self.path).map_err(failed)?;
            // SQLite syncs the directory after creating a WAL on its first sync, which
            // `synchronous=NORMAL` may never do: sync it here once, so the file's entry is
            // durable too.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
            }
            self.file = Some(file);
        }
        match &self.file {
            Some(file) => file.sync_data().map_err(failed),
            None => Ok(()),
        }
    }
}

/// The thread's loop: takes every job waiting (up to [`MAX_BATCH`]), runs them in order,
/// syncs once if any committed, answers them; until closed or every handle is gone.
fn serve(mut conn: Connection, durability: Durability, rx: mpsc::Receiver<Command>) {
    let committed = Arc::new(AtomicBool::new(false));
    let mut wal = match durability {
        Durability::PerCommit => None,
        Durability::GroupCommit { wal } => {
            let flag = committed.clone();
            let hook = conn.commit_hook(Some(move || {
                flag.store(true, Ordering::Relaxed);
                false
            }));
            match hook {
                Ok(()) => Some(WalSync {
                    path: wal,
                    file: None,
                }),
                Err(err) => {
                    // Without the hook the thread cannot tell writes from reads: sync each
                    // commit instead.
                    tracing::warn!(%err, "no commit hook; syncing every commit");
                    if let Err(err) = conn.pragma_update(None, "synchronous", "FULL") {
                        tracing::error!(%err, "cannot set synchronous=FULL");
                    }
                    None
                }
            }
        }
    };
    let mut answers: Vec<(Answer, bool)> = Vec::new();
    let mut closing = None;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Run(job) => {
                    committed.store(false, Ordering::Relaxed);
                    let answer = job(&mut conn);
                    answers.push((answer, committed.load(Ordering::Relaxed)));
                }
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if answers.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let wrote = answers.iter().any(|(_, wrote)| *wrote);
        let failure = match (&mut wal, wrote) {
            (Some(wal), true) => wal.sync().err(),
            _ => None,
        };
        if let Some(err) = &failure {
            tracing::error!(%err, "syncing the WAL failed; the batch's writes may not be durable");
        }
        for (answer, wrote) in answers.drain(..) {
            answer(failure.as_ref().filter(|_| wrote));
        }
        if let Some(done) = closing.take() {
            close_connection(conn);
            let _ = done.send(());
            return;
        }
    }
    close_connection(conn);
}

/// The WAL file SQLite keeps beside `db` in WAL mode.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
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

/// Runs `f` in an immediate write transaction whose `BEGIN IMMEDIATE` and `COMMIT` are cached
/// statements: rusqlite's `Transaction` runs them with `execute_batch`, which parses the SQL
/// every time (about 6 % of an agent turn's CPU went to parsing those two statements). On an
/// error from `f` or from the commit, the transaction is rolled back and the error returned.
pub(crate) fn in_write_transaction<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = f(conn).and_then(|value| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if result.is_err()
        && !conn.is_autocommit()
        && let Err(err) = conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]))
    {
        tracing::error!(%err, "rolling back a failed write transaction failed");
    }
    result
}
