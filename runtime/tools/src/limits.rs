//! How many tool calls each session has running, so the registry can refuse one beyond
//! `tools.max_concurrent_runs_per_session` instead of starting processes without bound.
//!
//! The counts live in [`RunCounts`], which a registry rebuilt by a configuration reload shares
//! with the one it replaces ([`crate::ToolRegistry::reconfigured`]): calls still running under
//! the old registry keep counting against the new limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Running tool calls per session id. Cheap to clone; clones share the counts. Only sessions
/// with a call in progress have an entry, so the map stays as small as the work in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunCounts {
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One running call of a session; the count goes down when it is dropped (also when the call's
/// future is dropped half-way).
#[derive(Debug)]
pub(crate) struct RunSlot {
    counts: RunCounts,
    session_id: String,
}

impl RunCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // The map holds plain counters; a panic elsewhere cannot leave it half-updated.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for one more call of `session_id`, or `Err(running)` when `limit` calls are
    /// already running.
    pub(crate) fn try_acquire(&self, session_id: &str, limit: usize) -> Result<RunSlot, usize> {
        let mut running = self.lock();
        let count = running.get(session_id).copied().unwrap_or(0);
        if count >= limit {
            return Err(count);
        }
        running.insert(session_id.to_owned(), count + 1);
        Ok(RunSlot {
            counts: self.clone(),
            session_id: session_id.to_owned(),
        })
    }

    /// Calls of `session_id` running now.
    #[cfg(test)]
    pub(crate) fn running(&self, session_id: &str) -> usize {
        self.lock().get(session_id).copied().unwrap_or(0)
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        let mut running = self.counts.lock();
        if let Some(count) = running.get_mut(&self.session_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.session_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_session_and_released_on_drop() {
        let counts = RunCounts::default();
        let a1 = counts.try_acquire("a", 2).ok();
        let a2 = counts.try_acquire("a", 2).ok();
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(counts.try_acquire("a", 2).err(), Some(2));
        let b = counts.try_acquire("b", 2);
        assert!(b.is_ok(), "another session has its own slots");
        drop(a1);
        assert_eq!(counts.running("a"), 1);
        let a3 = counts.try_acquire("a", 2);
        assert!(a3.is_ok());
        drop((a2, a3, b));
        assert_eq!(counts.running("a"), 0);
        assert!(counts.lock().is_empty(), "idle sessions leave no entry");
    }

    #[test]
    fn a_lower_limit_applies_to_runs_already_counted() {
        let counts = RunCounts::default();
        let _slots: Vec<_> = (0..3)
            .filter_map(|_| counts.try_acquire("a", 3).ok())
            .collect();
        assert_eq!(counts.try_acquire("a", 1).err(), Some(3));
    }
}
