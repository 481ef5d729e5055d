//! The one error type of the store, so callers can tell "retry later" (Closed), "pick another
//! key" (Conflict) and "bad input" (InvalidJson, InvalidTimestamp) apart from real failures.

use std::path::PathBuf;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error other than a unique-key violation.
    #[error("sqlite error: {0}")]
    Sqlite(rusqlite::Error),

    /// A row with the same unique key already exists (e.g. a duplicate pairing code).
    #[error("conflict: {0}; use a different key")]
    Conflict(String),

    /// The store's worker thread has stopped (the store was closed, or it never started).
    #[error("the store is closed; reopen the database with Store::open")]
    Closed,

    /// Creating the database's folder or file failed.
    #[error("cannot prepare the database at {path}: {source}; check the path and its permissions")]
    Io {
        /// The path that could not be prepared.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The worker thread could not be started.
    #[error("cannot start the store's worker thread: {0}")]
    Thread(std::io::Error),

    /// The database was written by a newer gateway whose schema this build does not know.
    #[error(
        "the database schema is at version {found} but this build knows only up to {supported}; \
         run a newer gateway or restore a backup"
    )]
    SchemaTooNew {
        /// The highest migration version recorded in the database.
        found: u32,
        /// The highest migration version this build knows.
        supported: u32,
    },

    /// A field that must hold JSON text does not.
    #[error("{field} is not valid JSON ({source}); send a JSON document")]
    InvalidJson {
        /// Which field was wrong.
        field: &'static str,
        /// Why it did not parse.
        source: serde_json::Error,
    },

    /// A timestamp is outside the range a calendar day can be computed for.
    #[error(
        "timestamp {0} ms is out of range; send epoch milliseconds between the years 0000 and 9999"
    )]
    InvalidTimestamp(i64),

    /// A new canvas artifact was refused because its session already holds the most allowed
    /// (see [`crate::Store::canvas_put`]); nothing was written.
    #[error(
        "session `{session_id}` already has {count} canvas artifacts and the limit is {limit}; \
         delete some first or raise the limit"
    )]
    CanvasFull {
        /// The session that is full.
        session_id: String,
        /// How many artifacts it holds.
        count: u64,
        /// The limit the put was checked against.
        limit: u32,
    },

    /// A job given to [`crate::Store::call`] panicked; the store keeps running.
    #[error("a store job panicked: {0}")]
    JobPanicked(String),

    /// A job given to [`crate::Store::call`] returned with a transaction still open; it was
    /// rolled back so the store cannot acknowledge uncommitted writes.
    #[error(
        "a store job returned with an open transaction; it was rolled back: commit it in the job"
    )]
    TransactionLeftOpen,

    /// The write was committed but making it durable (syncing the WAL to disk) failed: it may
    /// be lost on a power failure or crash.
    #[error(
        "the write may not be durable: syncing the database log failed ({0}); check the disk \
         (space, errors in the kernel log) and send it again"
    )]
    Sync(String),

    /// The write was rolled back: the transaction its group-commit batch shares with other
    /// writes could not be committed (see `worker.rs`), so none of the batch was stored.
    #[error(
        "the write was not stored: committing its batch failed ({0}); check the disk (space, \
         errors in the kernel log) and send it again"
    )]
    Commit(String),
}

impl From<rusqlite::Error> for StoreError {
    /// Unique and primary-key violations become [`StoreError::Conflict`]; everything else stays
    /// a sqlite error.
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        if let rusqlite::Error::SqliteFailure(code, message) = &err
            && matches!(
                code.extended_code,
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        {
            return StoreError::Conflict(
                message
                    .clone()
                    .unwrap_or_else(|| "unique constraint failed".to_owned()),
            );
        }
        StoreError::Sqlite(err)
    }
}

/// Checks that `text` is one JSON document, naming `field` in the error.
pub(crate) fn check_json(field: &'static str, text: &str) -> Result<(), StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|source| StoreError::InvalidJson { field, source })
}

/// Checks an optional JSON field.
pub(crate) fn check_json_opt(field: &'static str, text: Option<&str>) -> Result<(), StoreError> {
    text.map_or(Ok(()), |t| check_json(field, t))
}
