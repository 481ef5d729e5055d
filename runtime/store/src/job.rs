//! Running one job of a worker thread safely: a panic becomes an error, a transaction the job
//! left open is rolled back, and the job's answer carries a failure that overtook it (its
//! batch rolled back, its sync failed).

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;
use crate::syncer::{Answer, Failure};

/// The answer of a job that returned `result`: sent as is, or as the failure that overtook it.
pub(crate) fn answer_with<T: Send + 'static>(
    result: Result<T, StoreError>,
    reply_tx: oneshot::Sender<Result<T, StoreError>>,
) -> Answer {
    Box::new(move |failure: Option<&Failure>| {
        let result = match failure {
            Some(failure) => Err(failure.error()),
            None => result,
        };
        let _ = reply_tx.send(result);
    })
}

/// Runs one job: a panic becomes an error, and a transaction the job left open is rolled back.
pub(crate) fn run_job<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = catch_panic(conn, f);
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

/// Runs `f`, turning a panic into [`StoreError::JobPanicked`].
pub(crate) fn catch_panic<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(%message, "store job panicked");
            Err(StoreError::JobPanicked(message))
        }
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
