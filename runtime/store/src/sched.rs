//! The store's threads (writer, sync, reader) run under Linux's `SCHED_BATCH` policy: same
//! share of the CPU as any other thread, but a thread woken by a new job does not preempt the
//! thread that is running (see sched(7)).
//!
//! **Why.** Every job is sent by an async worker, which wakes the writer thread; its answer
//! wakes the sync thread, and the synced answer wakes the async worker again. Under the
//! default policy a woken store thread usually preempted the async worker at once, so on a
//! busy core (the benchmark pins the whole server to one) the writer ran each job as it
//! arrived, and the async worker was switched out and back for every job: 0.88 context
//! switches per agent turn. Without wakeup preemption the async worker finishes what it is
//! doing first (answers, reads, more jobs), and the writer then runs the jobs waiting as one
//! round: 0.29 switches per turn and about 9 % less server CPU per short turn. On an idle core
//! a woken store thread still runs at once, so no job waits longer when the machine has room.

/// Puts the calling thread under `SCHED_BATCH` (Linux only; any user may choose it). If the
/// system refuses, the thread keeps its policy: the same results, with more context switches.
pub(crate) fn batch_policy() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler(2) only reads `param`, a valid local, during the call;
        // pid 0 names the calling thread. No safe wrapper exists in the crates we use (nix and
        // rustix do not expose it).
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the store thread keeps its scheduling policy (SCHED_BATCH refused)"
            );
        }
    }
}
