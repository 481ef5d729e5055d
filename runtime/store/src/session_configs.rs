//! The sessions' config overrides as last written, kept in memory so that a caller can learn a
//! session's queue policy without a round trip to the writer thread (every `agent.send` asks
//! for it before it queues its message).
//!
//! Like the recent history (`recent.rs`), it is written only by jobs on the writer thread,
//! which runs every write of `sessions.config` (`set_session_config`) and every session delete,
//! so it changes in the same order as the table: a read of the row remembers what it saw, a
//! config write replaces the entry once its statement succeeded, a delete drops it. A session
//! row is only ever created without a config (`ensure`), so "no config" is also right for a
//! session that does not exist yet. Readers on other threads see a write once its job ended,
//! that is before its caller hears back.
//!
//! Bounded: past [`MAX_SESSIONS`] entries it starts again from empty (entries are refilled by
//! the next read of each session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Sessions remembered at most.
pub const MAX_SESSIONS: usize = 65_536;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct SessionConfigs {
    inner: Mutex<HashMap<Box<str>, Option<Arc<str>>>>,
}

impl SessionConfigs {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Option<Arc<str>>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's config as last seen (`Some(None)`: no config); `None` when not known.
    pub(crate) fn get(&self, session_id: &str) -> Option<Option<Arc<str>>> {
        self.lock().get(session_id).cloned()
    }

    /// Remembers the config read or written for the session (writer thread only).
    pub(crate) fn set(&self, session_id: &str, config: Option<&str>) {
        let mut inner = self.lock();
        if let Some(known) = inner.get_mut(session_id) {
            if known.as_deref() != config {
                *known = config.map(Arc::from);
            }
            return;
        }
        if inner.len() >= MAX_SESSIONS {
            inner.clear();
        }
        inner.insert(session_id.into(), config.map(Arc::from));
    }

    /// Forgets every session (a group-commit batch whose reads it had taken was rolled back).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Forgets a session (deleted).
    pub(crate) fn forget(&self, session_id: &str) {
        self.lock().remove(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_replaces_and_forgets() {
        let configs = SessionConfigs::default();
        assert_eq!(configs.get("a"), None);
        configs.set("a", None);
        assert_eq!(configs.get("a"), Some(None));
        configs.set("a", Some("{}"));
        assert_eq!(configs.get("a").flatten().as_deref(), Some("{}"));
        configs.forget("a");
        assert_eq!(configs.get("a"), None);
    }

    #[test]
    fn starts_again_when_full() {
        let configs = SessionConfigs::default();
        for i in 0..MAX_SESSIONS {
            configs.set(&i.to_string(), None);
        }
        configs.set("one more", Some("{}"));
        assert_eq!(configs.get("0"), None);
        assert_eq!(configs.get("one more").flatten().as_deref(), Some("{}"));
    }
}
