//! A dedicated OS thread that owns one rusqlite `Connection` and runs jobs sent to it one at a
//! time, so no blocking SQLite call ever runs on a tokio worker. A job's reply is sent only
//! after the job returned, and a job that left a transaction open is rolled back and fails,
//! so an `Ok` seen by a caller means the job's writes are committed.
//!
//! **Group commit.** The writer's connection commits with `synchronous=NORMAL` (no fsync per
//! commit) and commits are made durable by syncing the WAL once for many jobs, before they are
//! answered. The thread runs jobs in **rounds**: it runs every job waiting, then hands the
//! round's answers to the sync thread (`syncer.rs`), which syncs the WAL once and answers them,
//! while this thread already runs the jobs that arrive meanwhile into the next round. It hands
//! a round over only when the sync thread is free (told by [`Command::Synced`]) and no job is
//! waiting, or when the round holds [`MAX_BATCH`] jobs, so a round gathers every job that
//! arrived during the previous sync. The message appends and a turn's start
//! ([`Worker::call_batched`]) share one SQLite transaction per round (`round.rs`), so a round
//! writes each page once; other jobs run in transactions of their own. A caller still sees
//! `Ok` only once its write survives a power loss; a job that committed nothing (a read) adds
//! no sync, and a failed sync answers every job that wrote with [`StoreError::Sync`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;
use crate::job::{answer_with, run_job};
use crate::round::{Context, Round, in_job_savepoint};
use crate::syncer::{Answer, Failure, Pending, Syncer, WalSync};

/// Most jobs in one round while the sync thread is free: bounds how long the first job of a
/// burst waits for its answer while later ones run.
const MAX_BATCH: usize = 256;

type Job = Box<dyn FnOnce(&mut Connection) -> Answer + Send + 'static>;

/// Clears the in-memory views of the store after a batch was rolled back (`round.rs`).
pub(crate) type OnAbort = Arc<dyn Fn() + Send + Sync>;

enum Command {
    /// A job run in a transaction of its own (or none).
    Run(Job),
    /// A job run inside the round's batch transaction, in a savepoint.
    RunBatched(Job),
    /// The sync thread answered every round handed to it.
    Synced,
    Close(oneshot::Sender<()>),
    /// The last handle was dropped.
    Shutdown,
}

/// How the thread makes commits durable.
pub(crate) enum Durability {
    /// Each commit syncs itself (`synchronous=FULL`, or a connection that never writes).
    PerCommit,
    /// Commits do not sync (`synchronous=NORMAL` in WAL mode); a sync thread syncs this WAL
    /// file once per round of jobs before answering them.
    GroupCommit { wal: PathBuf },
}

/// Tells the thread to stop once the last [`Worker`] clone is gone (the sync thread holds a
/// sender too, so the channel alone would never close).
struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

/// Handle to one worker thread; clones share the thread, which ends on [`Worker::close`] or
/// when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Worker {
    handle: Arc<Handle>,
    on_abort: OnAbort,
}

impl Worker {
    /// Starts a thread serving the already opened `conn`.
    pub(crate) fn spawn(
        name: &str,
        conn: Connection,
        durability: Durability,
        on_abort: OnAbort,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        let to_self = tx.clone();
        let thread_abort = on_abort.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(conn, durability, rx, to_self, thread_abort))
            .map_err(StoreError::Thread)?;
        Ok(Worker {
            handle: Arc::new(Handle { tx }),
            on_abort,
        })
    }

    /// Starts a thread that opens its connection with `open` first, and awaits that open, so
    /// opening never blocks the caller's async worker.
    pub(crate) async fn start(
        name: &str,
        open: impl FnOnce() -> Result<(Connection, Durability), StoreError> + Send + 'static,
        on_abort: OnAbort,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        let to_self = tx.clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_abort = on_abort.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || match open() {
                Ok((conn, durability)) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(conn, durability, rx, to_self, thread_abort);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Worker {
            handle: Arc::new(Handle { tx }),
            on_abort,
        })
    }

    /// Runs `f` on the thread and returns its result (see [`crate::Store::call`]).
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job =
            Box::new(move |conn: &mut Connection| answer_with(run_job(conn, f), reply_tx));
        self.send(Command::Run(job))?;
        reply_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`Worker::call`], but `write` runs inside the round's batch transaction, in a
    /// savepoint of its own (see `round.rs`), and must not begin, commit or roll back a
    /// transaction itself; `then` runs with its result once it succeeded, to update the
    /// store's in-memory views.
    pub(crate) async fn call_batched<T, R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        then: impl FnOnce(T) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let on_abort = self.on_abort.clone();
        let job: Job = Box::new(move |conn: &mut Connection| {
            answer_with(
                in_job_savepoint(conn, on_abort.as_ref(), write, then),
                reply_tx,
            )
        });
        self.send(Command::RunBatched(job))?;
        reply_rx.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        self.handle.tx.send(command).map_err(|_| StoreError::Closed)
    }

    /// Stops the thread after the jobs queued before this call and waits for the connection
    /// to close. Jobs queued later fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.send(Command::Close(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// Where a round's answers go: straight to the callers, or through the sync thread.
enum Answering {
    Inline,
    Synced(Syncer),
}

impl Answering {
    /// Answers the round or hands it to the sync thread; `true` when the sync thread has it
    /// (and will say [`Command::Synced`]).
    fn hand_over(&self, round: Vec<Pending>) -> bool {
        let unsent = match self {
            Answering::Inline => round,
            Answering::Synced(syncer) => match syncer.hand_over(round) {
                Ok(()) => return true,
                Err(round) => round,
            },
        };
        // Inline (each commit synced itself), or the sync thread is gone: nothing made these
        // writes durable, unless they were synced per commit.
        let failure = match self {
            Answering::Inline => None,
            Answering::Synced(_) => Some(Failure::Sync("the sync thread stopped".to_owned())),
        };
        for pending in unsent {
            pending.finish(failure.as_ref());
        }
        false
    }

    fn close(self) {
        if let Answering::Synced(syncer) = self {
            syncer.close();
        }
    }
}

/// Sets up how commits become durable: with a commit hook and a sync thread for group
/// commit; without a hook (the thread could not tell writes from reads) every commit syncs.
fn answering(
    conn: &mut Connection,
    durability: Durability,
    committed: &Arc<AtomicBool>,
    to_self: mpsc::Sender<Command>,
) -> Answering {
    let Durability::GroupCommit { wal } = durability else {
        return Answering::Inline;
    };
    let flag = committed.clone();
    let hook = conn.commit_hook(Some(move || {
        flag.store(true, Ordering::Relaxed);
        false
    }));
    let started = match hook {
        Ok(()) => Syncer::spawn("flynn-store-sync", WalSync::new(wal), move || {
            let _ = to_self.send(Command::Synced);
        })
        .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match started {
        Ok(syncer) => Answering::Synced(syncer),
        Err(err) => {
            // Without the hook the thread cannot tell writes from reads; without the sync
            // thread nothing would sync: sync each commit instead.
            tracing::warn!(%err, "no group commit; syncing every commit");
            if let Err(err) = conn.pragma_update(None, "synchronous", "FULL") {
                tracing::error!(%err, "cannot set synchronous=FULL");
            }
            Answering::Inline
        }
    }
}

/// The thread's loop: runs jobs into the open round and hands the round to the sync thread
/// when it is free and nothing waits (or the round is full); until closed or every handle is
/// gone.
fn serve(
    mut conn: Connection,
    durability: Durability,
    rx: mpsc::Receiver<Command>,
    to_self: mpsc::Sender<Command>,
    on_abort: OnAbort,
) {
    crate::sched::batch_policy();
    let committed = Arc::new(AtomicBool::new(false));
    let answering = answering(&mut conn, durability, &committed, to_self);
    let batching = matches!(answering, Answering::Synced(_));
    let mut cx = Context {
        conn: &mut conn,
        committed: &committed,
        batching,
        on_abort: on_abort.as_ref(),
    };
    let mut round = Round::new();
    let mut syncing = false;
    let mut closing = None;
    loop {
        let ready = !round.is_empty() && !syncing;
        let command = if ready && round.len() >= MAX_BATCH {
            None
        } else if ready {
            rx.try_recv().ok()
        } else {
            match rx.recv() {
                Ok(command) => Some(command),
                Err(_) => break,
            }
        };
        match command {
            Some(Command::Run(job)) => round.run_plain(&mut cx, job),
            Some(Command::RunBatched(job)) => round.run_batched(&mut cx, job),
            Some(Command::Synced) => syncing = false,
            Some(Command::Close(done)) => {
                closing = Some(done);
                break;
            }
            Some(Command::Shutdown) => break,
            None => {
                round.commit_batch(&mut cx);
                syncing = answering.hand_over(std::mem::take(&mut round.pending));
            }
        }
    }
    round.commit_batch(&mut cx);
    let _ = answering.hand_over(std::mem::take(&mut round.pending));
    answering.close();
    close_connection(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
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
