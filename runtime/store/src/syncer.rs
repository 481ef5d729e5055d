//! The sync thread of group commit: it makes the writer thread's commits durable and only then
//! answers the jobs that made them, while the writer already runs the next jobs.
//!
//! **Why a thread of its own.** With the writer syncing its batches itself, no job ran during
//! an `fdatasync` (a few hundred microseconds to milliseconds on a virtual disk), and at 50 turns
//! in flight the writer was asleep in the sync most of the time. Now the writer hands each
//! round of jobs (their answers, and whether they wrote) to this thread and goes on; the jobs
//! that arrive meanwhile run into the next round, which the writer hands over once this
//! thread is free again (see `worker.rs`).
//!
//! **Why an answer still leaves only once its writes are durable.** The writer hands a round
//! over only after the round's last commit returned, so every WAL frame of the round was
//! written (`pwrite`) before the hand-over; this thread starts its `fdatasync` of the WAL after
//! receiving the round, so the sync covers those frames (it flushes the inode's data written
//! before the call; frames the writer appends during the sync belong to later rounds, which
//! get a sync of their own). Rounds that queued up while a sync ran share the next sync.
//! Answers are sent in the order the jobs ran, a read's too: a read answered after a write
//! was synced can only have seen durable data.
//!
//! **Checkpoints.** SQLite may checkpoint (copy the WAL into the database file) at any commit
//! on the writer thread, also while this thread has not yet synced frames of an earlier round.
//! In WAL mode with `synchronous=NORMAL`, SQLite syncs the WAL before a checkpoint and the
//! database file after a complete one, and it restarts the WAL (writes frames again from its
//! start) only after a complete checkpoint. So a frame is overwritten only once its page is
//! durable in the database file: a round's writes are durable either in the WAL (which the
//! sync covers) or in the synced database file. The WAL file is never deleted while the store
//! is open (only when the last connection closes), so the descriptor synced here is SQLite's
//! WAL; `Store::flush` truncates it after a complete checkpoint, which is harmless for the same
//! reason.
//!
//! **Failures.** If a sync fails, every job of every round it covered that wrote gets
//! [`StoreError::Sync`]. The failure is **sticky**: after a failed `fdatasync`, Linux may drop
//! the unwritten pages and report success to the next sync, and later rounds may have built on
//! the lost writes (a session created in the failed round), so every later write fails the
//! same way until the gateway restarts (SQLite then recovers from what is on disk).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::StoreError;

/// Why a job's answer is an error although the job itself succeeded.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The sync covering its writes failed.
    Sync(String),
    /// The batch transaction holding its writes could not be committed (see `round.rs`).
    Commit(String),
}

impl Failure {
    pub(crate) fn error(&self) -> StoreError {
        match self {
            Failure::Sync(message) => StoreError::Sync(message.clone()),
            Failure::Commit(message) => StoreError::Commit(message.clone()),
        }
    }
}

/// What a job leaves behind: the answer to send once its round is durable, told why the job
/// failed after all, if it did.
pub(crate) type Answer = Box<dyn FnOnce(Option<&Failure>) + Send + 'static>;

/// A job that ran and waits to be answered.
pub(crate) struct Pending {
    pub(crate) answer: Answer,
    /// It committed something: its answer waits for a sync.
    pub(crate) wrote: bool,
    /// It failed after it ran (its batch was rolled back).
    pub(crate) failure: Option<Arc<Failure>>,
}

impl Pending {
    /// Sends the answer; `sync` is the failure of the sync that covered the round, if any.
    pub(crate) fn finish(self, sync: Option<&Failure>) {
        let failure = self.failure.as_deref().or(sync.filter(|_| self.wrote));
        (self.answer)(failure);
    }
}

/// The WAL file, opened once, synced once per group of rounds that wrote.
pub(crate) struct WalSync {
    path: PathBuf,
    file: Option<File>,
}

impl WalSync {
    pub(crate) fn new(path: PathBuf) -> WalSync {
        WalSync { path, file: None }
    }

    fn sync(&mut self) -> Result<(), String> {
        let failed = |source: std::io::Error| format!("{}: {source}", self.path.display());
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

/// Handle to the sync thread; [`Syncer::close`] answers what was handed over and joins it.
pub(crate) struct Syncer {
    tx: mpsc::Sender<Vec<Pending>>,
    thread: JoinHandle<()>,
}

impl Syncer {
    /// Starts the thread; `synced` is called after each group of rounds was answered (the
    /// writer hands over its next round then).
    pub(crate) fn spawn(
        name: &str,
        wal: WalSync,
        synced: impl Fn() + Send + 'static,
    ) -> Result<Syncer, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(wal, rx, synced))
            .map_err(StoreError::Thread)?;
        Ok(Syncer { tx, thread })
    }

    /// Hands a round over. Returns it if the thread is gone (it panicked), so the caller can
    /// answer it itself.
    pub(crate) fn hand_over(&self, round: Vec<Pending>) -> Result<(), Vec<Pending>> {
        self.tx.send(round).map_err(|e| e.0)
    }

    /// Waits until every round handed over is answered.
    pub(crate) fn close(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("the store's sync thread panicked");
        }
    }
}

fn serve(mut wal: WalSync, rx: mpsc::Receiver<Vec<Pending>>, synced: impl Fn()) {
    crate::sched::batch_policy();
    let mut sticky: Option<String> = None;
    let mut rounds = Vec::new();
    while let Ok(first) = rx.recv() {
        rounds.push(first);
        rounds.extend(rx.try_iter());
        let wrote = rounds.iter().flatten().any(|p| p.wrote);
        let failure = match (&sticky, wrote) {
            (_, false) => None,
            (Some(message), true) => Some(Failure::Sync(message.clone())),
            (None, true) => wal.sync().err().map(|message| {
                tracing::error!(
                    %message,
                    "syncing the WAL failed; every later write fails until the gateway restarts"
                );
                sticky = Some(format!("{message} (an earlier sync failed)"));
                Failure::Sync(message)
            }),
        };
        for pending in rounds.drain(..).flatten() {
            pending.finish(failure.as_ref());
        }
        synced();
    }
}
