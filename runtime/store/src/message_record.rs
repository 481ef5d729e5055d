//! The message types: what is appended and what is read back. Apart from `messages` (which
//! stores them) so the in-memory recent history can hold them without depending on the SQL side.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who wrote a message, as stored (the `role` column).
///
/// Not the spec's `HistoryRole`, on purpose: this is the store's persisted vocabulary, read back
/// from files written by earlier versions, while `HistoryRole` is the wire's; they coincide
/// today, but a role added to or renamed in the protocol must not change what the store accepts
/// without a migration. Using the generated enum would also make the store depend on
/// `flynn-protocol` (its build script runs the code generator, and it pulls in the wire runtime)
/// for four words. The one mapping is the gateway's exhaustive `history_role` (in
/// `handlers/sessions.rs`): a role added here fails to compile there until it is mapped, and a
/// role added to the protocol reaches the history only once the store has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
}

impl Role {
    /// The protocol's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
        }
    }

    /// A user or assistant message: what a prompt replays (tool output and system notes are
    /// shown in a session's history but not sent to the model again), so what a character bound
    /// on a turn's history counts.
    pub fn is_conversation(self) -> bool {
        matches!(self, Role::User | Role::Assistant)
    }
}

/// The characters (Unicode scalar values) of a text; ASCII text, most of it, is counted by its
/// length after a word-at-a-time check.
pub(crate) fn char_count(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the four roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message role {0:?}; use user, assistant, system or tool")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "system" => Ok(Role::System),
            "tool" => Ok(Role::Tool),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub session_id: String,
    pub role: Role,
    pub content: String,
    /// JSON text (e.g. an array of attachment descriptors).
    pub attachments: Option<String>,
    pub created_at_ms: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Increasing in append order; history is ordered by it.
    pub id: i64,
    pub session_id: String,
    pub role: Role,
    pub content: String,
    pub attachments: Option<String>,
    pub created_at_ms: i64,
}

/// The start of a stored message: what a checkpoint keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExcerpt {
    pub role: Role,
    /// The message's first characters (all of it when shorter).
    pub text: String,
}
