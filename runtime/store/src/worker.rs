//! A dedicated OS thread that owns one rusqlite `Connection` and runs jobs sent to it one at a
//! time, so no blocking SQLite call ever runs on a tokio worker. A job's reply is sent only
//! after the job returned, and a job that left a transaction open is rolled back and fails,
//! so an `Ok` seen by a caller means the job's writes are committed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

enum Command {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// Handle to one worker thread; clones share the thread, which ends on [`Worker::close`] or
/// when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Worker {
    tx: mpsc::Sender<Command>,
}

impl Worker {
    /// Starts a thread serving the already opened `conn`.
    pub(crate) fn spawn(name: &str, conn: Connection) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(conn, rx))
            .map_err(StoreError::Thread)?;
        Ok(Worker { tx })
    }

    /// Starts a thread that opens its connection with `open` first, and awaits that open, so
    /// opening never blocks the caller's async worker.
    pub(crate) async fn start(
        name: &str,
        open: impl FnOnce() -> Result<Connection, StoreError> + Send + 'static,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || match open() {
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
        Ok(Worker { tx })
    }

    /// Runs `f` on the thread and returns its result (see [`crate::Store::call`]).
    pub(crate) async fn call<T: Send + 'static>(
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

    /// Stops the thread after the jobs queued before this call and waits for the connection
    /// to close. Jobs queued later fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Command::Close(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// The thread's loop: runs jobs in order until closed or every handle is gone.
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
