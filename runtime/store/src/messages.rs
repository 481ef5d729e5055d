//! Conversation messages, their session counters and their topic terms.

use rusqlite::{Connection, Row, params};

use crate::clock::utc_day;
use crate::error::check_json_opt;
use crate::message_record::{MessageExcerpt, MessageRecord, NewMessage, Role};
use crate::recent::{Kept, RecentMessages, Wanted};
use crate::{Store, StoreError, recent, sessions, terms};

/// The stored form of a message just appended with `id`.
pub(crate) fn record(id: i64, msg: NewMessage) -> MessageRecord {
    MessageRecord {
        id,
        session_id: msg.session_id,
        role: msg.role,
        content: msg.content,
        attachments: msg.attachments,
        created_at_ms: msg.created_at_ms,
    }
}

/// The last `limit` messages of a session from SQLite (all when negative), oldest first.
fn read_history(
    conn: &Connection,
    session_id: &str,
    limit: i64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, session_id, role, content, attachments, created_at_ms FROM (
             SELECT * FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2
         ) ORDER BY id ASC",
    )?;
    let rows = stmt
        .query_map(params![session_id, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The newest messages of a session from SQLite, oldest first, as far back as `wanted` needs,
/// and whether they are all the session has. Rows are read newest first and only until the
/// bound is met: a session of long answers costs what its window holds, not its tail.
fn read_newest(
    conn: &Connection,
    session_id: &str,
    wanted: Wanted,
) -> Result<(Vec<Kept>, bool), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, session_id, role, content, attachments, created_at_ms FROM messages
         WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(wanted.limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![session_id, limit])?;
    let mut newest_first = Vec::new();
    let mut chars = 0;
    let complete = loop {
        if wanted.met_by(newest_first.len(), chars) {
            break false;
        }
        let Some(row) = rows.next()? else {
            break true;
        };
        let message = Kept::new(from_row(row)?);
        chars += message.counted_chars();
        newest_first.push(message);
    };
    newest_first.reverse();
    Ok((newest_first, complete))
}

/// The last `limit` (at most [`recent::TAIL`]) messages of a session, from memory when it
/// holds them; otherwise the whole tail is read once and remembered, so later turns are served
/// from memory. Runs on the writer thread (see `recent.rs`).
pub(crate) fn cached_history(
    conn: &Connection,
    recent: &RecentMessages,
    session_id: &str,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    cached_history_with(conn, recent, session_id, Wanted::last(limit), |m| {
        m.record(session_id)
    })
}

/// The newest messages `wanted` needs, from memory when it holds them; otherwise read from
/// SQLite and remembered: as far as a character bound needs, or else a whole [`recent::TAIL`],
/// so that later shorter reads are served from memory. Copies out only what `f` takes of each
/// message. Runs on the writer thread (see `recent.rs`).
pub(crate) fn cached_history_with<T>(
    conn: &Connection,
    recent: &RecentMessages,
    session_id: &str,
    wanted: Wanted,
    mut f: impl FnMut(&Kept) -> T,
) -> Result<Vec<T>, StoreError> {
    if let Some(rows) = recent.get_with(session_id, wanted, &mut f) {
        return Ok(rows);
    }
    let read = match wanted.chars {
        Some(_) => wanted,
        None => Wanted::last(recent::TAIL.max(wanted.limit)),
    };
    let (rows, complete) = read_newest(conn, session_id, read)?;
    let rows = recent.fill(session_id, rows, complete, wanted);
    let skip = rows.len().saturating_sub(wanted.limit);
    Ok(rows.iter().skip(skip).map(f).collect())
}

/// [`Store::history_excerpts`] from SQLite, which cuts the text itself.
fn read_excerpts(
    conn: &Connection,
    session_id: &str,
    limit: u32,
    chars: u32,
) -> Result<Vec<MessageExcerpt>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT role, substr(content, 1, ?3) FROM messages
         WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let mut excerpts = stmt
        .query_map(params![session_id, limit, chars], |row| {
            Ok(MessageExcerpt {
                role: role_at(row, 0)?,
                text: row.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    excerpts.reverse();
    Ok(excerpts)
}

/// The role stored in column `idx`.
fn role_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Role> {
    let role: String = row.get(idx)?;
    role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        id: row.get(0)?,
        session_id: row.get(1)?,
        role: role_at(row, 2)?,
        content: row.get(3)?,
        attachments: row.get(4)?,
        created_at_ms: row.get(5)?,
    })
}

/// Appends one message inside the caller's transaction: creates the session if missing,
/// bumps its counters and records the topic terms of user messages. The session's counters
/// are bumped first, so an existing session (every message but a session's first) costs no
/// `INSERT … ON CONFLICT DO NOTHING`: only when the bump finds no row is the session created
/// and bumped, with the same result as creating it first.
pub(crate) fn append_in(conn: &Connection, msg: &NewMessage) -> Result<i64, StoreError> {
    let day = utc_day(msg.created_at_ms)?;
    if !bump_session(conn, msg)? {
        sessions::ensure(conn, &msg.session_id, msg.created_at_ms)?;
        bump_session(conn, msg)?;
    }
    insert_message(conn, msg, &day)
}

/// [`append_in`] for a session the caller's transaction has already created or read (a
/// turn's start): the same without looking for the session.
pub(crate) fn append_to_session_in(conn: &Connection, msg: &NewMessage) -> Result<i64, StoreError> {
    let day = utc_day(msg.created_at_ms)?;
    bump_session(conn, msg)?;
    insert_message(conn, msg, &day)
}

/// Counts the message in its session's row; `false` when the session does not exist.
fn bump_session(conn: &Connection, msg: &NewMessage) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE sessions SET message_count = message_count + 1,
                 last_message_at_ms = MAX(COALESCE(last_message_at_ms, ?2), ?2),
                 last_active_at_ms = MAX(last_active_at_ms, ?2)
             WHERE id = ?1",
        )?
        .execute(params![msg.session_id, msg.created_at_ms])?;
    Ok(changed == 1)
}

/// Inserts the message (its session exists) and the topic terms of a user message.
fn insert_message(conn: &Connection, msg: &NewMessage, day: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (session_id, role, content, attachments, created_at_ms, day)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        msg.session_id,
        msg.role.as_str(),
        msg.content,
        msg.attachments,
        msg.created_at_ms,
        day
    ])?;
    let id = conn.last_insert_rowid();
    if msg.role == Role::User {
        let mut insert = conn.prepare_cached(
            "INSERT INTO message_terms (message_id, created_at_ms, day, term)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for term in terms::extract(&msg.content) {
            insert.execute(params![id, msg.created_at_ms, day, term])?;
        }
    }
    Ok(id)
}

impl Store {
    /// Appends a message and returns its id. In one transaction: creates the session if
    /// missing, inserts the message, bumps the session's `message_count`, `last_message_at_ms`
    /// and last activity, and records topic terms of user messages. Committed before `Ok`.
    pub async fn append_message(&self, msg: NewMessage) -> Result<i64, StoreError> {
        check_json_opt("attachments", msg.attachments.as_deref())?;
        let recent = self.recent.clone();
        self.call_batched(
            move |tx| Ok((append_in(tx, &msg)?, msg)),
            move |(id, msg)| {
                recent.appended([record(id, msg)]);
                id
            },
        )
        .await
    }

    /// Appends several messages in one transaction (all or none), e.g. for imports; returns
    /// their ids in order.
    pub async fn append_messages(&self, msgs: Vec<NewMessage>) -> Result<Vec<i64>, StoreError> {
        for msg in &msgs {
            check_json_opt("attachments", msg.attachments.as_deref())?;
        }
        let recent = self.recent.clone();
        self.call_batched(
            move |tx| {
                let ids = msgs
                    .iter()
                    .map(|m| append_in(tx, m))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((ids, msgs))
            },
            move |(ids, msgs): (Vec<i64>, Vec<NewMessage>)| {
                recent.appended(ids.iter().zip(msgs).map(|(id, m)| record(*id, m)));
                ids
            },
        )
        .await
    }

    /// The last `limit` messages of the session, oldest first, each cut to its first `chars`
    /// characters (what a context checkpoint keeps). Up to [`recent::EXCERPT_MESSAGES`] of
    /// [`recent::EXCERPT_CHARS`] come from memory for a session it holds (kept as messages are
    /// appended); otherwise SQLite cuts the text, so long answers are not copied out whole.
    pub async fn history_excerpts(
        &self,
        session_id: &str,
        limit: u32,
        chars: u32,
    ) -> Result<Vec<MessageExcerpt>, StoreError> {
        let session_id = session_id.to_owned();
        let recent = self.recent.clone();
        self.call(move |conn| {
            let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
            let cut = usize::try_from(chars).unwrap_or(usize::MAX);
            if let Some(excerpts) = recent.excerpts(&session_id, wanted, cut) {
                return Ok(excerpts);
            }
            if wanted > recent::EXCERPT_MESSAGES || cut > recent::EXCERPT_CHARS {
                return read_excerpts(conn, &session_id, limit, chars);
            }
            // Read what memory keeps, so the next checkpoint is served from it.
            let kept = read_excerpts(
                conn,
                &session_id,
                recent::EXCERPT_MESSAGES as u32,
                recent::EXCERPT_CHARS as u32,
            )?;
            recent.fill_excerpts(&session_id, &kept);
            Ok(recent::last_cut(&kept, wanted, cut))
        })
        .await
    }

    /// The last `limit` messages of the session (all when `None`), oldest first, in append
    /// order. Empty for an unknown session. Up to [`recent::TAIL`] messages of recently active
    /// sessions come from memory (see `recent.rs`): a turn does not re-read its history.
    pub async fn history(
        &self,
        session_id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let session_id = session_id.to_owned();
        let recent = self.recent.clone();
        let wanted = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        self.call(move |conn| match wanted.filter(|&l| l <= recent::TAIL) {
            Some(l) => cached_history(conn, &recent, &session_id, l),
            // SQLite reads a negative LIMIT as "no limit".
            None => read_history(conn, &session_id, limit.map_or(-1, i64::from)),
        })
        .await
    }
}
