//! One round of the writer thread: the jobs it ran since it last handed answers to the sync
//! thread, and the **batch transaction** their writes share.
//!
//! **Why one transaction for many jobs.** Each SQLite commit writes every page its transaction
//! touched to the WAL, with a checksum per frame: a turn's start touches about 13 pages (the
//! messages table and its indexes, the session row and its indexes, the topic terms, presence)
//! and its answer about 7, and fifty turns committing one after another wrote the same session
//! and index pages fifty times (the two commits of a turn were ~89 k instructions, half of it
//! checksums). Jobs sent with `Worker::call_batched` (the message appends and the turn's start)
//! therefore run inside one `BEGIN IMMEDIATE` transaction per round, each in a `SAVEPOINT` of
//! its own, and the round commits once: every page is written once per round.
//!
//! **What stays true.**
//! - A job that fails (or panics) rolls back to its savepoint: it undoes only itself.
//! - A job's answer still waits until the round committed and was synced (`syncer.rs`); the
//!   other connection (the reader) never sees uncommitted writes (WAL snapshots).
//! - Jobs of the round read what earlier jobs of the round wrote (one connection), and the
//!   in-memory views (`recent.rs`, `session_configs.rs`) are updated as each job's writes land
//!   in the batch, so they agree with what the connection reads.
//! - If the commit fails, or SQLite rolls the whole transaction back after an error (it may,
//!   for a full disk or an I/O error), nothing of the round's batched jobs is stored and every
//!   one of them gets [`crate::StoreError::Commit`]; the in-memory views are cleared (`on_abort`)
//!   so they cannot show rolled-back rows. Nothing acknowledged is lost.
//! - Jobs sent with `Worker::call` run outside the batch transaction, as before: the writer
//!   commits the open batch first, so such a job may open and commit its own transactions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use crate::StoreError;
use crate::syncer::{Answer, Failure, Pending};

/// The writer thread's open round.
pub(crate) struct Round {
    pub(crate) pending: Vec<Pending>,
    /// Index in `pending` of the first job inside the open batch transaction.
    batch: Option<usize>,
}

/// What a round needs from the writer thread.
pub(crate) struct Context<'a> {
    pub(crate) conn: &'a mut Connection,
    /// Set by SQLite's commit hook: the last commit wrote something.
    pub(crate) committed: &'a AtomicBool,
    /// Batch transactions are used (group commit with a working commit hook).
    pub(crate) batching: bool,
    /// Clears the in-memory views after a batch was rolled back.
    pub(crate) on_abort: &'a (dyn Fn() + Send + Sync),
}

impl Round {
    pub(crate) fn new() -> Round {
        Round {
            pending: Vec::new(),
            batch: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Runs a job outside any batch transaction (committing the open batch first).
    pub(crate) fn run_plain(
        &mut self,
        cx: &mut Context<'_>,
        job: impl FnOnce(&mut Connection) -> Answer,
    ) {
        self.commit_batch(cx);
        cx.committed.store(false, Ordering::Relaxed);
        let answer = job(cx.conn);
        self.pending.push(Pending {
            answer,
            wrote: cx.committed.load(Ordering::Relaxed),
            failure: None,
        });
    }

    /// Runs a job inside the round's batch transaction, opening it if needed. When it cannot
    /// be opened (another process holds the write lock past the busy timeout), the job runs
    /// on its own, as a plain one, and meets the same error in its own transaction.
    pub(crate) fn run_batched(
        &mut self,
        cx: &mut Context<'_>,
        job: impl FnOnce(&mut Connection) -> Answer,
    ) {
        if !cx.batching {
            return self.run_plain(cx, job);
        }
        if self.batch.is_none() {
            if let Err(err) = cached(cx.conn, "BEGIN IMMEDIATE") {
                tracing::warn!(%err, "cannot open a batch transaction; running the job alone");
                return self.run_plain(cx, job);
            }
            self.batch = Some(self.pending.len());
        }
        let answer = job(cx.conn);
        // The answer waits for the batch's commit; `commit_batch` tells whether it wrote.
        self.pending.push(Pending {
            answer,
            wrote: false,
            failure: None,
        });
        if cx.conn.is_autocommit() {
            // SQLite rolled the whole transaction back after an error in this job.
            self.batch_lost(
                cx,
                "SQLite rolled the batch transaction back after an error",
            );
        }
    }

    /// Commits the open batch transaction, if any.
    pub(crate) fn commit_batch(&mut self, cx: &mut Context<'_>) {
        let Some(start) = self.batch else {
            return;
        };
        cx.committed.store(false, Ordering::Relaxed);
        match cached(cx.conn, "COMMIT") {
            Ok(()) => {
                self.batch = None;
                let wrote = cx.committed.load(Ordering::Relaxed);
                for pending in &mut self.pending[start..] {
                    pending.wrote = wrote;
                }
            }
            Err(err) => {
                if !cx.conn.is_autocommit()
                    && let Err(err) = cached(cx.conn, "ROLLBACK")
                {
                    tracing::error!(%err, "rolling back a batch that did not commit failed");
                }
                self.batch_lost(cx, &err.to_string());
            }
        }
    }

    /// The batch transaction is gone (rolled back): fail its jobs, clear the memory views.
    fn batch_lost(&mut self, cx: &mut Context<'_>, why: &str) {
        let Some(start) = self.batch.take() else {
            return;
        };
        tracing::error!(%why, jobs = self.pending.len() - start, "a batch of writes was lost");
        (cx.on_abort)();
        let failure = Arc::new(Failure::Commit(why.to_owned()));
        for pending in &mut self.pending[start..] {
            pending.failure = Some(failure.clone());
        }
    }
}

fn cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs a batched job: `write` in a savepoint of its own inside the batch transaction (on an
/// error or a panic, only its own writes are undone), then `then` with its result, which
/// updates the in-memory views once the writes are in. `on_abort` runs after a panic, as a
/// view may be half-updated. Outside a transaction (batching off), `write` runs in a write
/// transaction of its own and `then` after its commit, as a plain job would.
pub(crate) fn in_job_savepoint<T, R>(
    conn: &mut Connection,
    on_abort: &(dyn Fn() + Send + Sync),
    write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    then: impl FnOnce(T) -> R,
) -> Result<R, StoreError> {
    let written = if conn.is_autocommit() {
        crate::job::run_job(conn, |c| in_write_transaction(c, write))
    } else {
        in_savepoint(conn, write)
    };
    let result = written.and_then(|value| crate::job::catch_panic(conn, |_| Ok(then(value))));
    if matches!(result, Err(StoreError::JobPanicked(_))) {
        on_abort();
    }
    result
}

/// `write` in the savepoint `flynn_job`: released on success, rolled back to on an error or
/// a panic.
fn in_savepoint<T>(
    conn: &mut Connection,
    write: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    cached(conn, "SAVEPOINT flynn_job")?;
    let result = crate::job::catch_panic(conn, |c| write(c));
    if result.is_err() {
        undo_savepoint(conn, "flynn_job");
    } else if let Err(err) = cached(conn, "RELEASE flynn_job") {
        undo_savepoint(conn, "flynn_job");
        return Err(err.into());
    }
    result
}

/// Rolls back to a savepoint and releases it (logging a failure: SQLite may already have
/// rolled the whole transaction back, which the round notices). Only on a failure path, so
/// the statements are built here rather than kept per savepoint name.
fn undo_savepoint(conn: &Connection, name: &str) {
    if conn.is_autocommit() {
        return;
    }
    let undone = cached(conn, &format!("ROLLBACK TO {name}"))
        .and_then(|()| cached(conn, &format!("RELEASE {name}")));
    if let Err(err) = undone {
        tracing::error!(%err, savepoint = name, "rolling back to a savepoint failed");
    }
}

/// Runs `f` in an immediate write transaction whose `BEGIN IMMEDIATE` and `COMMIT` are cached
/// statements: rusqlite's `Transaction` runs them with `execute_batch`, which parses the SQL
/// every time (about 6 % of an agent turn's CPU went to parsing those two statements). On an
/// error from `f` or from the commit, the transaction is rolled back and the error returned.
/// Inside a transaction already open (a batched job), it is a savepoint instead, committed
/// with the batch.
pub(crate) fn in_write_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !conn.is_autocommit() {
        cached(conn, "SAVEPOINT flynn_write")?;
        let result = f(conn).and_then(|value| {
            cached(conn, "RELEASE flynn_write")?;
            Ok(value)
        });
        if result.is_err() {
            undo_savepoint(conn, "flynn_write");
        }
        return result;
    }
    cached(conn, "BEGIN IMMEDIATE")?;
    let result = f(conn).and_then(|value| {
        cached(conn, "COMMIT")?;
        Ok(value)
    });
    if result.is_err()
        && !conn.is_autocommit()
        && let Err(err) = cached(conn, "ROLLBACK")
    {
        tracing::error!(%err, "rolling back a failed write transaction failed");
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::oneshot;

    use super::*;
    use crate::job::answer_with;

    type Reply = oneshot::Receiver<Result<(), StoreError>>;

    /// A WAL database with one table, a commit hook counting commits and setting `committed`.
    fn open() -> (
        tempfile::TempDir,
        Connection,
        Arc<AtomicBool>,
        Arc<AtomicUsize>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("r.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL);")
            .unwrap();
        let committed = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (committed.clone(), commits.clone());
        conn.commit_hook(Some(move || {
            flag.store(true, Ordering::Relaxed);
            count.fetch_add(1, Ordering::Relaxed);
            false
        }))
        .unwrap();
        (dir, conn, committed, commits)
    }

    /// A batched job inserting `v` in its own `in_write_transaction`, then failing or
    /// panicking as told.
    fn insert(
        round: &mut Round,
        cx: &mut Context<'_>,
        v: i64,
        then: Result<(), &'static str>,
    ) -> Reply {
        let (tx, rx) = oneshot::channel();
        round.run_batched(cx, |conn: &mut Connection| {
            let write = move |conn: &Connection| {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                match then {
                    Ok(()) => Ok(()),
                    Err("panic") => panic!("job {v} panicked"),
                    Err(_) => Err(StoreError::Closed),
                }
            };
            let result = in_job_savepoint(conn, cx_abort(), write, |()| ());
            answer_with(result, tx)
        });
        rx
    }

    static ABORTS: AtomicUsize = AtomicUsize::new(0);

    /// The writer's context with batch transactions on, counting aborts in `ABORTS`.
    fn batching<'a>(conn: &'a mut Connection, committed: &'a AtomicBool) -> Context<'a> {
        Context {
            conn,
            committed,
            batching: true,
            on_abort: cx_abort(),
        }
    }

    fn cx_abort() -> &'static (dyn Fn() + Send + Sync) {
        &|| {
            ABORTS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn answered(round: &mut Round) {
        for pending in round.pending.drain(..) {
            pending.finish(None);
        }
    }

    #[test]
    fn a_round_commits_once_and_a_failing_job_undoes_only_itself() {
        let (_dir, mut conn, committed, commits) = open();
        let aborts = ABORTS.load(Ordering::Relaxed);
        let mut cx = batching(&mut conn, &committed);
        let mut round = Round::new();
        let replies = [
            insert(&mut round, &mut cx, 1, Ok(())),
            insert(&mut round, &mut cx, 2, Err("fails")),
            insert(&mut round, &mut cx, 3, Err("panic")),
            insert(&mut round, &mut cx, 4, Ok(())),
        ];
        round.commit_batch(&mut cx);
        assert!(round.pending.iter().all(|p| p.wrote && p.failure.is_none()));
        answered(&mut round);
        assert_eq!(
            commits.load(Ordering::Relaxed),
            1,
            "one commit for the round"
        );
        assert_eq!(values(&conn), [1, 4]);
        let [r1, r2, r3, r4] = replies.map(|mut r| r.try_recv().unwrap());
        assert!(r1.is_ok() && r4.is_ok());
        assert!(matches!(r2, Err(StoreError::Closed)), "{r2:?}");
        assert!(matches!(r3, Err(StoreError::JobPanicked(_))), "{r3:?}");
        // A panic may leave a view half-updated: the views are cleared.
        assert!(ABORTS.load(Ordering::Relaxed) > aborts);
    }

    #[test]
    fn a_batch_rolled_back_fails_all_its_jobs_and_the_next_one_starts_afresh() {
        let (_dir, mut conn, committed, _commits) = open();
        let aborts = ABORTS.load(Ordering::Relaxed);
        let mut cx = batching(&mut conn, &committed);
        let mut round = Round::new();
        let first = insert(&mut round, &mut cx, 1, Ok(()));
        // What SQLite does after some errors (a full disk): the whole transaction is gone.
        let (tx, second) = oneshot::channel();
        round.run_batched(&mut cx, |conn: &mut Connection| {
            let result = conn.execute_batch("ROLLBACK").map_err(StoreError::from);
            answer_with(result, tx)
        });
        let mut third = insert(&mut round, &mut cx, 3, Ok(()));
        round.commit_batch(&mut cx);
        answered(&mut round);
        assert!(
            ABORTS.load(Ordering::Relaxed) > aborts,
            "the views are cleared"
        );
        for mut reply in [first, second] {
            let reply = reply.try_recv().unwrap();
            assert!(matches!(reply, Err(StoreError::Commit(_))), "{reply:?}");
        }
        assert!(third.try_recv().unwrap().is_ok());
        assert_eq!(values(&conn), [3]);
    }
}
