//! The last messages of recently active sessions, kept in memory so an agent turn does not read
//! its history back from SQLite every time (the profile: 200 rows re-read and
//! re-allocated per turn, whatever the session's length).
//!
//! It is touched only by jobs on the writer thread, which also runs every write of `messages`,
//! so it changes in the same order as the table: an append updates it after its transaction
//! committed, a session delete drops the session's entry. (A `Store::call` job that wrote the
//! `messages` table with its own SQL would bypass it; no such job exists: message writes go
//! through `append_message(s)` and `delete_session`.) The mutex is never contended; it only
//! makes the type shareable.
//!
//! Bounded: at most [`TAIL`] messages per session and [`MAX_BYTES`] of message text in all;
//! past that, the least recently used sessions are dropped (they are read from SQLite again
//! when next asked for).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::message_record::{MessageRecord, Role};

/// Messages kept per session: the largest `history` limit served from memory.
pub const TAIL: usize = 256;
/// Message text (content, attachments) kept in all, in bytes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// A message as memory keeps it: its text shared, so that a turn's history is handed out
/// without copying it (the session id is the tail's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) id: i64,
    pub(crate) role: Role,
    pub(crate) content: Arc<str>,
    pub(crate) attachments: Option<String>,
    pub(crate) created_at_ms: i64,
}

impl Kept {
    fn new(m: MessageRecord) -> Kept {
        Kept {
            id: m.id,
            role: m.role,
            content: Arc::from(m.content),
            attachments: m.attachments,
            created_at_ms: m.created_at_ms,
        }
    }

    /// The message as `history` returns it.
    pub(crate) fn record(&self, session_id: &str) -> MessageRecord {
        MessageRecord {
            id: self.id,
            session_id: session_id.to_owned(),
            role: self.role,
            content: self.content.to_string(),
            attachments: self.attachments.clone(),
            created_at_ms: self.created_at_ms,
        }
    }
}

struct Tail {
    messages: VecDeque<Kept>,
    /// The tail holds every message of the session (it has fewer than [`TAIL`]).
    complete: bool,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Tail>,
    bytes: usize,
    clock: u64,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct RecentMessages {
    inner: Mutex<Inner>,
}

fn size(m: &Kept) -> usize {
    m.content.len() + m.attachments.as_ref().map_or(0, String::len) + 64
}

impl RecentMessages {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last `limit` messages of the session, oldest first, when memory holds them.
    #[cfg(test)]
    pub(crate) fn get(&self, session_id: &str, limit: usize) -> Option<Vec<MessageRecord>> {
        self.get_with(session_id, limit, |m| m.record(session_id))
    }

    /// [`RecentMessages::get`], copying out only what `f` takes of each message.
    pub(crate) fn get_with<T>(
        &self,
        session_id: &str,
        limit: usize,
        f: impl FnMut(&Kept) -> T,
    ) -> Option<Vec<T>> {
        if limit > TAIL {
            return None;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let tail = inner.sessions.get_mut(session_id)?;
        if tail.messages.len() < limit && !tail.complete {
            return None;
        }
        tail.last_used = now;
        let skip = tail.messages.len().saturating_sub(limit);
        Some(tail.messages.iter().skip(skip).map(f).collect())
    }

    /// Remembers what SQLite returned for a `history` call asking for [`TAIL`] messages.
    /// Returns them as kept, whether or not memory keeps them.
    pub(crate) fn fill(&self, session_id: &str, messages: Vec<MessageRecord>) -> VecDeque<Kept> {
        let complete = messages.len() < TAIL;
        let messages: VecDeque<Kept> = messages.into_iter().map(Kept::new).collect();
        let mut inner = self.lock();
        inner.clock += 1;
        let tail = Tail {
            complete,
            bytes: messages.iter().map(size).sum(),
            messages: messages.clone(),
            last_used: inner.clock,
        };
        inner.bytes += tail.bytes;
        if let Some(old) = inner.sessions.insert(session_id.to_owned(), tail) {
            inner.bytes -= old.bytes;
        }
        inner.evict();
        messages
    }

    /// Adds messages that were just committed (in append order) to the sessions memory holds.
    pub(crate) fn appended(&self, messages: impl IntoIterator<Item = MessageRecord>) {
        let mut inner = self.lock();
        let mut added = 0;
        let mut removed = 0;
        for message in messages {
            let Some(tail) = inner.sessions.get_mut(&message.session_id) else {
                continue;
            };
            let message = Kept::new(message);
            let bytes = size(&message);
            tail.messages.push_back(message);
            tail.bytes += bytes;
            added += bytes;
            while tail.messages.len() > TAIL {
                if let Some(old) = tail.messages.pop_front() {
                    let bytes = size(&old);
                    tail.bytes -= bytes;
                    removed += bytes;
                }
                tail.complete = false;
            }
        }
        inner.bytes = inner.bytes + added - removed;
        inner.evict();
    }

    /// Forgets everything (a group-commit batch whose appends it had taken was rolled back).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.sessions.clear();
        inner.bytes = 0;
    }

    /// Forgets a session (deleted).
    pub(crate) fn forget(&self, session_id: &str) {
        let mut inner = self.lock();
        if let Some(old) = inner.sessions.remove(session_id) {
            inner.bytes -= old.bytes;
        }
    }
}

impl Inner {
    /// Drops least recently used sessions until the text fits in [`MAX_BYTES`] again, down to
    /// three quarters of it so that eviction (a scan) runs rarely.
    fn evict(&mut self) {
        if self.bytes <= MAX_BYTES {
            return;
        }
        let mut by_age: Vec<(u64, String)> = self
            .sessions
            .iter()
            .map(|(id, tail)| (tail.last_used, id.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, id) in by_age {
            if self.bytes <= MAX_BYTES / 4 * 3 {
                break;
            }
            if let Some(old) = self.sessions.remove(&id) {
                self.bytes -= old.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, session: &str, content: &str) -> MessageRecord {
        MessageRecord {
            id,
            session_id: session.to_owned(),
            role: Role::User,
            content: content.to_owned(),
            attachments: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn serves_only_what_it_holds() {
        let recent = RecentMessages::default();
        assert!(recent.get("a", 10).is_none());
        recent.fill("a", vec![message(1, "a", "one"), message(2, "a", "two")]);
        // Complete: fewer than TAIL, so any limit is served.
        assert_eq!(recent.get("a", 10).unwrap().len(), 2);
        assert_eq!(recent.get("a", 1).unwrap()[0].id, 2);
        recent.appended([message(3, "a", "three"), message(4, "b", "other")]);
        let ids: Vec<i64> = recent.get("a", 10).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(recent.get("b", 1).is_none(), "b was never filled");
        assert!(recent.get("a", TAIL + 1).is_none());
        recent.forget("a");
        assert!(recent.get("a", 1).is_none());
    }

    #[test]
    fn keeps_a_bounded_tail() {
        let recent = RecentMessages::default();
        let full: Vec<MessageRecord> = (0..TAIL as i64).map(|i| message(i, "a", "x")).collect();
        recent.fill("a", full);
        recent.appended([message(TAIL as i64, "a", "y")]);
        let tail = recent.get("a", TAIL).unwrap();
        assert_eq!(tail.len(), TAIL);
        assert_eq!(tail.first().unwrap().id, 1);
        assert_eq!(tail.last().unwrap().id, TAIL as i64);
    }

    #[test]
    fn evicts_the_least_recently_used_past_the_byte_bound() {
        let recent = RecentMessages::default();
        let big = "x".repeat(MAX_BYTES / 3);
        recent.fill("old", vec![message(1, "old", &big)]);
        recent.fill("mid", vec![message(2, "mid", &big)]);
        recent.get("old", 1);
        recent.fill("new", vec![message(3, "new", &big)]);
        recent.fill("newer", vec![message(4, "newer", &big)]);
        assert!(
            recent.get("mid", 1).is_none(),
            "least recently used goes first"
        );
        assert!(recent.get("newer", 1).is_some());
    }
}
