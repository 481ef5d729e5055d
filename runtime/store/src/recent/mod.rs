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
//! when next asked for). A session whose last reader bounded its history by characters (an
//! agent turn: only as much as the model's window can hold, see [`Wanted`]) keeps only what
//! that reader needs again: with long answers, a 256-message tail of every active session
//! would overflow the byte bound within seconds and send each turn back to SQLite for
//! megabytes it then trims away.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::message_record::{MessageExcerpt, MessageRecord, Role, char_count};

mod excerpts;

use excerpts::Excerpts;
pub(crate) use excerpts::last_cut;
pub use excerpts::{EXCERPT_CHARS, EXCERPT_MESSAGES};

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
    /// The characters of `content`, counted once when the message is kept.
    pub(crate) chars: usize,
}

impl Kept {
    pub(crate) fn new(m: MessageRecord) -> Kept {
        Kept {
            id: m.id,
            role: m.role,
            chars: char_count(&m.content),
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

    /// What the message adds to a character bound: its characters if the prompt replays it.
    pub(crate) fn counted_chars(&self) -> usize {
        if self.role.is_conversation() {
            self.chars
        } else {
            0
        }
    }
}

/// How much of a session's newest history a reader needs: going back in time, messages until
/// there are `limit` of them, or until the user and assistant messages among them hold `chars`
/// characters (the message that reaches the bound included), whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) limit: usize,
    pub(crate) chars: Option<usize>,
}

impl Wanted {
    /// The last `limit` messages.
    pub(crate) fn last(limit: usize) -> Wanted {
        Wanted { limit, chars: None }
    }

    /// Whether `taken` of the newest messages, holding `chars` counted characters, are enough.
    pub(crate) fn met_by(self, taken: usize, chars: usize) -> bool {
        taken >= self.limit || self.chars.is_some_and(|bound| chars >= bound)
    }
}

struct Tail {
    /// The session's newest messages, oldest first.
    messages: VecDeque<Kept>,
    /// The tail holds every message of the session.
    complete: bool,
    bytes: usize,
    /// [`Kept::counted_chars`] of `messages`.
    chars: usize,
    /// What the last reader wanted when it had a character bound: appends drop the oldest
    /// messages it would not need again. `None`: keep up to [`TAIL`].
    keep: Option<Wanted>,
    /// The starts of the session's last messages, when known (see `excerpts.rs`); their bytes
    /// count in `bytes`.
    excerpts: Option<Excerpts>,
    last_used: u64,
}

impl Tail {
    /// A tail of `messages`; its excerpts are taken from them when they reach back far enough,
    /// else kept from `before` (what memory held of the session, still true: every write of
    /// the session's messages went through memory), else unknown.
    fn new(
        messages: VecDeque<Kept>,
        complete: bool,
        wanted: Wanted,
        now: u64,
        before: Option<Tail>,
    ) -> Tail {
        let excerpts = if complete || messages.len() >= EXCERPT_MESSAGES {
            let skip = messages.len().saturating_sub(EXCERPT_MESSAGES);
            Some(Excerpts::new(
                messages.iter().skip(skip).map(|m| (m.role, &*m.content)),
            ))
        } else {
            before.and_then(|t| t.excerpts)
        };
        Tail {
            complete,
            bytes: messages.iter().map(size).sum::<usize>()
                + excerpts.as_ref().map_or(0, Excerpts::bytes),
            chars: messages.iter().map(Kept::counted_chars).sum(),
            messages,
            keep: wanted.chars.is_some().then_some(wanted),
            excerpts,
            last_used: now,
        }
    }

    /// How many of the newest messages `wanted` takes, when the tail holds all of them.
    fn serves(&self, wanted: Wanted) -> Option<usize> {
        let (mut taken, mut chars) = (0, 0);
        for m in self.messages.iter().rev() {
            if wanted.met_by(taken, chars) {
                return Some(taken);
            }
            taken += 1;
            chars += m.counted_chars();
        }
        (wanted.met_by(taken, chars) || self.complete).then_some(taken)
    }

    /// Whether the oldest message can go: past [`TAIL`], or not needed by `keep` (the rest
    /// still serves it).
    fn oldest_is_spare(&self) -> bool {
        let Some(oldest) = self.messages.front() else {
            return false;
        };
        let rest = self.messages.len() - 1;
        rest >= TAIL
            || self
                .keep
                .is_some_and(|keep| keep.met_by(rest, self.chars - oldest.counted_chars()))
    }

    /// Appends a message, then drops the spare oldest ones; returns the bytes added and removed.
    fn push(&mut self, message: Kept) -> (usize, usize) {
        let (mut added, mut removed) = match &mut self.excerpts {
            Some(excerpts) => excerpts.push(message.role, &message.content),
            None => (0, 0),
        };
        added += size(&message);
        self.chars += message.counted_chars();
        self.messages.push_back(message);
        while self.oldest_is_spare() {
            let Some(old) = self.messages.pop_front() else {
                break;
            };
            self.chars -= old.counted_chars();
            removed += size(&old);
            self.complete = false;
        }
        self.bytes = self.bytes + added - removed;
        (added, removed)
    }
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
        self.get_with(session_id, Wanted::last(limit), |m| m.record(session_id))
    }

    /// The newest messages of the session `wanted` needs, oldest first, when memory holds them
    /// all; copies out only what `f` takes of each message.
    pub(crate) fn get_with<T>(
        &self,
        session_id: &str,
        wanted: Wanted,
        f: impl FnMut(&Kept) -> T,
    ) -> Option<Vec<T>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let tail = inner.sessions.get_mut(session_id)?;
        let taken = tail.serves(wanted)?;
        tail.last_used = now;
        tail.keep = wanted.chars.is_some().then_some(wanted);
        let skip = tail.messages.len() - taken;
        Some(tail.messages.iter().skip(skip).map(f).collect())
    }

    /// The last `limit` messages' first `chars` characters, oldest first, when memory keeps
    /// them (`limit` and `chars` within [`EXCERPT_MESSAGES`] and [`EXCERPT_CHARS`]).
    pub(crate) fn excerpts(
        &self,
        session_id: &str,
        limit: usize,
        chars: usize,
    ) -> Option<Vec<MessageExcerpt>> {
        if limit > EXCERPT_MESSAGES || chars > EXCERPT_CHARS {
            return None;
        }
        let inner = self.lock();
        let excerpts = inner.sessions.get(session_id)?.excerpts.as_ref()?;
        Some(excerpts.last(limit, chars))
    }

    /// Remembers the excerpts SQLite returned for the session's last [`EXCERPT_MESSAGES`]
    /// messages, cut to [`EXCERPT_CHARS`], when memory holds the session without them.
    pub(crate) fn fill_excerpts(&self, session_id: &str, last: &[MessageExcerpt]) {
        let mut inner = self.lock();
        let Some(tail) = inner.sessions.get_mut(session_id) else {
            return;
        };
        if tail.excerpts.is_some() {
            return;
        }
        let excerpts = Excerpts::new(last.iter().map(|e| (e.role, e.text.as_str())));
        let bytes = excerpts.bytes();
        tail.bytes += bytes;
        tail.excerpts = Some(excerpts);
        inner.bytes += bytes;
        inner.evict();
    }

    /// Remembers what SQLite returned for a reader that wanted `wanted`: the session's newest
    /// messages, oldest first, and whether they are all the session has. Returns them as kept,
    /// whether or not memory keeps them.
    pub(crate) fn fill(
        &self,
        session_id: &str,
        messages: Vec<Kept>,
        complete: bool,
        wanted: Wanted,
    ) -> VecDeque<Kept> {
        let messages = VecDeque::from(messages);
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let before = inner.sessions.remove(session_id);
        if let Some(old) = &before {
            inner.bytes -= old.bytes;
        }
        let tail = Tail::new(messages.clone(), complete, wanted, now, before);
        inner.bytes += tail.bytes;
        inner.sessions.insert(session_id.to_owned(), tail);
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
            let (a, r) = tail.push(Kept::new(message));
            added += a;
            removed += r;
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
mod tests;
