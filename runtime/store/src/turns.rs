//! The store work of an agent turn's start in one job on the writer thread: the session created
//! if missing, its record and its recent history read, and the turn's user messages appended
//! with their senders' presence, in one write transaction. Before, a turn made five round trips
//! to the writer thread for this (ensure, session, history, message, presence), three of them
//! write transactions, each a thread handoff and a wakeup back.

use std::sync::Arc;

use rusqlite::params;

use crate::error::check_json_opt;
use crate::message_record::{MessageRecord, NewMessage, Role};
use crate::messages::{append_to_session_in, cached_history_with, record};
use crate::recent::{RecentMessages, Wanted};
use crate::sessions::{SessionRecord, ensure, read_session};
use crate::{Store, StoreError};

/// A sender to count in `presence` (see [`Store::record_presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceUpdate {
    pub channel: String,
    pub sender_id: String,
    pub sender_name: Option<String>,
}

/// A user message of the turn and, when known, the sender to count in `presence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnMessage {
    pub content: String,
    /// JSON text (e.g. an array of attachment descriptors).
    pub attachments: Option<String>,
    pub created_at_ms: i64,
    pub presence: Option<PresenceUpdate>,
}

/// What [`Store::begin_turn`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnStart {
    pub session_id: String,
    /// Creation time of the session if it is missing.
    pub now_ms: i64,
    /// How many messages of history to return at most (read before the turn's messages are
    /// appended).
    pub history_limit: u32,
    /// Going back in time, history stops at the message with which the user and assistant
    /// messages returned reach this many characters (tool and system messages do not count: a
    /// prompt does not replay them). An agent passes what the model's window can hold at most,
    /// so that older messages, which the prompt would trim anyway, are neither read nor kept.
    pub history_chars: Option<u64>,
    /// The turn's user messages, appended to the session in order.
    pub messages: Vec<TurnMessage>,
}

/// What a turn starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnContext {
    /// The session's record before the turn's messages were appended.
    pub session: Option<SessionRecord>,
    /// The newest messages before the turn's, oldest first, as far back as `history_limit` and
    /// `history_chars` allow.
    pub history: Vec<HistoryMessage>,
}

/// A message of a turn's history: what a prompt is made of (a [`MessageRecord`] without the
/// session id and attachments, which a turn would copy only to drop them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMessage {
    pub id: i64,
    pub role: Role,
    /// Shared with the store's recent history: handing a turn its history copies no text.
    pub content: Arc<str>,
    /// The characters of `content` (Unicode scalar values), counted once when it was stored or
    /// read, not on every turn.
    pub chars: usize,
}

impl Store {
    /// Starts a turn in one job: creates the session if missing, reads its record and its
    /// newest messages (as far as [`TurnStart`]'s bounds allow), then appends the turn's messages (with their topic terms and
    /// session counters, as [`Store::append_message`]) and counts their senders in `presence`,
    /// all in one transaction, committed and synced before `Ok`. A presence update that fails
    /// is logged and left out, as a failed [`Store::record_presence`] was; any other failure
    /// appends nothing.
    pub async fn begin_turn(&self, start: TurnStart) -> Result<TurnContext, StoreError> {
        for m in &start.messages {
            check_json_opt("attachments", m.attachments.as_deref())?;
        }
        let recent = self.recent.clone();
        let configs = self.session_configs.clone();
        self.call_batched(
            move |tx| start_in(tx, &recent, start).map(|out| (out, recent)),
            move |((context, appended), recent): ((TurnContext, Vec<MessageRecord>), _)| {
                recent.appended(appended);
                if let Some(session) = &context.session {
                    configs.set(&session.id, session.config.as_deref());
                }
                context
            },
        )
        .await
    }
}

/// The job of [`Store::begin_turn`] inside its transaction: returns what the turn starts from
/// and the records of the appended messages (for the recent history, once committed).
fn start_in(
    tx: &rusqlite::Connection,
    recent: &RecentMessages,
    start: TurnStart,
) -> Result<(TurnContext, Vec<MessageRecord>), StoreError> {
    // Most turns continue a session: read it first, create it only when missing.
    let session = match read_session(tx, &start.session_id)? {
        Some(session) => Some(session),
        None => {
            ensure(tx, &start.session_id, start.now_ms)?;
            read_session(tx, &start.session_id)?
        }
    };
    let wanted = Wanted {
        limit: usize::try_from(start.history_limit)
            .unwrap_or(usize::MAX)
            .min(crate::recent::TAIL),
        chars: start
            .history_chars
            .map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
    };
    let history = cached_history_with(tx, recent, &start.session_id, wanted, |m| HistoryMessage {
        id: m.id,
        role: m.role,
        content: m.content.clone(),
        chars: m.chars,
    })?;
    let mut appended = Vec::with_capacity(start.messages.len());
    for m in start.messages {
        let message = NewMessage {
            session_id: start.session_id.clone(),
            role: Role::User,
            content: m.content,
            attachments: m.attachments,
            created_at_ms: m.created_at_ms,
        };
        // The session exists: read or created above, in this transaction.
        let id = append_to_session_in(tx, &message)?;
        appended.push(record(id, message));
        if let Some(p) = &m.presence {
            // A failed statement undoes only itself; the turn goes on without the count.
            if let Err(e) = presence_in(tx, p, m.created_at_ms) {
                tracing::warn!(error = %e, "could not record presence");
            }
        }
    }
    Ok((TurnContext { session, history }, appended))
}

/// The upsert of [`Store::record_presence`], inside the caller's transaction.
pub(crate) fn presence_in(
    conn: &rusqlite::Connection,
    p: &PresenceUpdate,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(crate::presence::UPSERT_SQL)?
        .execute(params![p.channel, p.sender_id, p.sender_name, at_ms])?;
    Ok(())
}
