//! Aggregates over the message history for `system.sessionAnalytics`.
//!
//! Every query reads a covering index with a range on time (`messages_by_time`,
//! `tool_runs_by_time`, `message_terms_by_time`), never the tables: the cost grows with the
//! rows in the window, not with the history, and no message text is read (topics come from
//! `message_terms`, filled at append time; see [`crate::terms`]). The indexes are pinned with
//! `INDEXED BY`: left alone, SQLite prefers walking `messages_by_session` for the per-session
//! `GROUP BY`, which reads every row of the table.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// Messages per UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Distinct sessions with at least one message that day.
    pub sessions: u64,
    pub messages: u64,
}

/// A session ranked by messages in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopSession {
    pub session_id: String,
    pub messages: u64,
    /// Time of its latest message in the window.
    pub last_activity_ms: i64,
}

/// A tool ranked by runs started in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopTool {
    pub tool: String,
    pub executions: u64,
}

/// A topic term ranked by the user messages in the window that contain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopTopic {
    pub topic: String,
    pub occurrences: u64,
}

/// The analytics of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analytics {
    /// Ascending by day.
    pub daily: Vec<DailyCount>,
    /// By messages desc, then latest activity desc, then session id.
    pub top_sessions: Vec<TopSession>,
    /// By executions desc, then tool name.
    pub top_tools: Vec<TopTool>,
    /// By occurrences desc, then term.
    pub top_topics: Vec<TopTopic>,
    /// Distinct sessions with a message in the window.
    pub total_sessions: u64,
    /// Messages in the window.
    pub total_messages: u64,
    /// `total_messages / total_sessions`, 0 when there are none.
    pub average_messages_per_session: f64,
}

/// Messages per day in the window (`?1` = since, ms).
pub const DAILY_SQL: &str = "SELECT day, COUNT(DISTINCT session_id), COUNT(*)
     FROM messages INDEXED BY messages_by_time
     WHERE created_at_ms >= ?1 GROUP BY day ORDER BY day";
/// Top sessions (`?1` = since, `?2` = limit).
pub const TOP_SESSIONS_SQL: &str = "SELECT session_id, COUNT(*) AS n, MAX(created_at_ms) AS last
     FROM messages INDEXED BY messages_by_time
     WHERE created_at_ms >= ?1
     GROUP BY session_id ORDER BY n DESC, last DESC, session_id LIMIT ?2";
/// Top tools (`?1` = since, `?2` = limit).
pub const TOP_TOOLS_SQL: &str = "SELECT tool, COUNT(*) AS n
     FROM tool_runs INDEXED BY tool_runs_by_time
     WHERE started_at_ms >= ?1 GROUP BY tool ORDER BY n DESC, tool LIMIT ?2";
/// Top topics (`?1` = since, `?2` = limit).
pub const TOP_TOPICS_SQL: &str = "SELECT term, COUNT(*) AS n
     FROM message_terms INDEXED BY message_terms_by_time
     WHERE created_at_ms >= ?1 GROUP BY term ORDER BY n DESC, term LIMIT ?2";
/// Totals (`?1` = since).
pub const TOTALS_SQL: &str = "SELECT COUNT(*), COUNT(DISTINCT session_id)
     FROM messages INDEXED BY messages_by_time WHERE created_at_ms >= ?1";

/// Every analytics query, named, for plan checks (`EXPLAIN QUERY PLAN`) and diagnostics.
/// Queries with a `?2` take the top limit.
pub const QUERIES: &[(&str, &str)] = &[
    ("daily", DAILY_SQL),
    ("top_sessions", TOP_SESSIONS_SQL),
    ("top_tools", TOP_TOOLS_SQL),
    ("top_topics", TOP_TOPICS_SQL),
    ("totals", TOTALS_SQL),
];

fn compute(conn: &Connection, since_ms: i64, top_limit: u32) -> Result<Analytics, StoreError> {
    // One read transaction: all figures come from the same snapshot.
    let tx = conn.unchecked_transaction()?;
    let daily = tx
        .prepare_cached(DAILY_SQL)?
        .query_map([since_ms], |r| {
            Ok(DailyCount {
                day: r.get(0)?,
                sessions: r.get(1)?,
                messages: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let top_sessions = tx
        .prepare_cached(TOP_SESSIONS_SQL)?
        .query_map(rusqlite::params![since_ms, top_limit], |r| {
            Ok(TopSession {
                session_id: r.get(0)?,
                messages: r.get(1)?,
                last_activity_ms: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let top_tools = tx
        .prepare_cached(TOP_TOOLS_SQL)?
        .query_map(rusqlite::params![since_ms, top_limit], |r| {
            Ok(TopTool {
                tool: r.get(0)?,
                executions: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let top_topics = tx
        .prepare_cached(TOP_TOPICS_SQL)?
        .query_map(rusqlite::params![since_ms, top_limit], |r| {
            Ok(TopTopic {
                topic: r.get(0)?,
                occurrences: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let (total_messages, total_sessions): (u64, u64) = tx
        .prepare_cached(TOTALS_SQL)?
        .query_row([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
    tx.finish()?;
    let average_messages_per_session = if total_sessions == 0 {
        0.0
    } else {
        total_messages as f64 / total_sessions as f64
    };
    Ok(Analytics {
        daily,
        top_sessions,
        top_tools,
        top_topics,
        total_sessions,
        total_messages,
        average_messages_per_session,
    })
}

impl Store {
    /// Analytics over messages, tool runs and user-message topics at or after `since_ms`;
    /// each top list holds at most `top_limit` entries.
    pub async fn session_analytics(
        &self,
        since_ms: i64,
        top_limit: u32,
    ) -> Result<Analytics, StoreError> {
        self.call(move |conn| compute(conn, since_ms, top_limit))
            .await
    }
}
