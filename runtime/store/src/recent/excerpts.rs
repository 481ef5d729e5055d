//! The starts of a session's last messages, kept beside its recent history for the context
//! checkpoint that every turn past the threshold saves (`Store::history_excerpts`). A turn's
//! history is trimmed to what the model's window holds, so with long answers the checkpoint's
//! 50 messages were read back from SQLite on every such turn (some hundred page reads); kept
//! here, each append adds one excerpt and drops the oldest.

use std::collections::VecDeque;

use crate::message_record::{MessageExcerpt, Role};

/// Messages whose excerpts memory keeps per session.
pub const EXCERPT_MESSAGES: usize = 50;
/// Characters memory keeps of each of them.
pub const EXCERPT_CHARS: usize = 500;

/// The first `chars` characters of `text`.
fn cut(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The first [`EXCERPT_CHARS`] characters of each of the session's last [`EXCERPT_MESSAGES`]
/// messages (all of its messages when it has fewer), oldest first.
#[derive(Debug, Default)]
pub(super) struct Excerpts {
    items: VecDeque<MessageExcerpt>,
    bytes: usize,
}

fn size(e: &MessageExcerpt) -> usize {
    e.text.len() + 32
}

impl Excerpts {
    /// From the session's last messages, oldest first (at most [`EXCERPT_MESSAGES`] of them;
    /// all it has when fewer).
    pub(super) fn new<'a>(last: impl IntoIterator<Item = (Role, &'a str)>) -> Excerpts {
        let mut excerpts = Excerpts::default();
        for (role, text) in last {
            excerpts.push(role, text);
        }
        excerpts
    }

    /// Bytes of text kept (with a per-excerpt overhead).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds the excerpt of a message just appended, dropping the oldest past
    /// [`EXCERPT_MESSAGES`]; returns the change in [`Excerpts::bytes`] as (added, removed).
    pub(super) fn push(&mut self, role: Role, text: &str) -> (usize, usize) {
        let excerpt = MessageExcerpt {
            role,
            text: cut(text, EXCERPT_CHARS).to_owned(),
        };
        let added = size(&excerpt);
        self.items.push_back(excerpt);
        let mut removed = 0;
        while self.items.len() > EXCERPT_MESSAGES {
            if let Some(old) = self.items.pop_front() {
                removed += size(&old);
            }
        }
        self.bytes = self.bytes + added - removed;
        (added, removed)
    }

    /// The last `limit` excerpts cut to `chars` characters (at most what is kept).
    pub(super) fn last(&self, limit: usize, chars: usize) -> Vec<MessageExcerpt> {
        last_cut(&self.items, limit, chars)
    }
}

/// The last `limit` of `excerpts` (oldest first), each cut to `chars` characters.
pub(crate) fn last_cut<'a>(
    excerpts: impl IntoIterator<Item = &'a MessageExcerpt, IntoIter: ExactSizeIterator>,
    limit: usize,
    chars: usize,
) -> Vec<MessageExcerpt> {
    let excerpts = excerpts.into_iter();
    let skip = excerpts.len().saturating_sub(limit);
    excerpts
        .skip(skip)
        .map(|e| MessageExcerpt {
            role: e.role,
            text: cut(&e.text, chars).to_owned(),
        })
        .collect()
}
