//! Aggregates over the message history for `system.sessionAnalytics`.
//!
//! No query reads message text or scans a table. A window `[since, ∞)` is split at the first
//! UTC midnight at or after `since`: the partial first day is read from covering indexes with
//! a range on time (`messages_by_time`, `message_terms_by_time`), and the whole days after it
//! from the daily rollups `session_days` and `term_days` (one row per day and session or term,
//! kept by triggers; see the migrations), searched by their `day` primary key. So the cost
//! grows with the sessions and distinct terms per day, not with the messages, and the result
//! is exact to the millisecond. Topics come from `message_terms`, filled at append time (see
//! [`crate::terms`]). The time indexes are pinned with `INDEXED BY`: left alone, SQLite prefers
//! walking `messages_by_session` for the per-session `GROUP BY`, which reads the whole table.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::clock::{MAX_MS, MIN_MS, next_midnight, utc_day};
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

// Every query takes ?1 = since (ms), ?2 = the first UTC midnight at or after since, ?3 = that
// midnight's day: rows in [?1, ?2) come from the time indexes, whole days from ?3 on from the
// daily rollups. Queries with ?4 take the top limit.

/// Messages and distinct sessions per day.
pub const DAILY_SQL: &str = "SELECT day, COUNT(DISTINCT session_id), COUNT(*)
     FROM messages INDEXED BY messages_by_time
     WHERE created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY day
     UNION ALL
     SELECT day, COUNT(*), SUM(messages) FROM session_days WHERE day >= ?3 GROUP BY day
     ORDER BY 1";
/// Top sessions, with the number of sessions and messages in the window on every row
/// (window functions see all groups before the LIMIT).
pub const TOP_SESSIONS_SQL: &str = "SELECT session_id, SUM(n) AS n, MAX(last) AS last,
         COUNT(*) OVER () AS sessions, SUM(SUM(n)) OVER () AS messages
     FROM (
         SELECT session_id, COUNT(*) AS n, MAX(created_at_ms) AS last
         FROM messages INDEXED BY messages_by_time
         WHERE created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY session_id
         UNION ALL
         SELECT session_id, messages, last_at_ms FROM session_days WHERE day >= ?3
     )
     GROUP BY session_id ORDER BY n DESC, last DESC, session_id LIMIT ?4";
/// Top tools, straight from the (smaller) tool-run time index (?2 and ?3 are not used).
pub const TOP_TOOLS_SQL: &str = "SELECT tool, COUNT(*) AS n
     FROM tool_runs INDEXED BY tool_runs_by_time
     WHERE started_at_ms >= ?1 GROUP BY tool ORDER BY n DESC, tool LIMIT ?4";
/// Top topic terms.
pub const TOP_TOPICS_SQL: &str = "SELECT term, SUM(n) AS n FROM (
         SELECT term, COUNT(*) AS n FROM message_terms INDEXED BY message_terms_by_time
         WHERE created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY term
         UNION ALL
         SELECT term, occurrences FROM term_days WHERE day >= ?3
     )
     GROUP BY term ORDER BY n DESC, term LIMIT ?4";

/// Every analytics query, named, for plan checks (`EXPLAIN QUERY PLAN`) and diagnostics.
pub const QUERIES: &[(&str, &str)] = &[
    ("daily", DAILY_SQL),
    ("top_sessions", TOP_SESSIONS_SQL),
    ("top_tools", TOP_TOOLS_SQL),
    ("top_topics", TOP_TOPICS_SQL),
];

/// The bound parameters of the queries for a window starting at `since_ms`: since, the
/// split point between raw rows and daily rollups, and its day.
pub fn window_params(since_ms: i64) -> Result<(i64, i64, String), StoreError> {
    let since = since_ms.clamp(MIN_MS, MAX_MS);
    let split = next_midnight(since);
    // Past the last supported day no message exists, so a day after every real one will do.
    let split_day = if split > MAX_MS {
        "9999-12-32".to_owned()
    } else {
        utc_day(split)?
    };
    Ok((since, split, split_day))
}

fn compute(conn: &Connection, since_ms: i64, top_limit: u32) -> Result<Analytics, StoreError> {
    let (since, split, split_day) = window_params(since_ms)?;
    // One read transaction: all figures come from the same snapshot.
    let tx = conn.unchecked_transaction()?;
    let daily = tx
        .prepare_cached(DAILY_SQL)?
        .query_map(params![since, split, split_day], |r| {
            Ok(DailyCount {
                day: r.get(0)?,
                sessions: r.get(1)?,
                messages: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // At least one row, to read the totals carried on every row.
    let session_rows = tx
        .prepare_cached(TOP_SESSIONS_SQL)?
        .query_map(params![since, split, split_day, top_limit.max(1)], |r| {
            Ok((
                TopSession {
                    session_id: r.get(0)?,
                    messages: r.get(1)?,
                    last_activity_ms: r.get(2)?,
                },
                r.get::<_, u64>(3)?,
                r.get::<_, u64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let (total_sessions, total_messages) =
        session_rows.first().map_or((0, 0), |(_, s, m)| (*s, *m));
    let top_sessions = session_rows
        .into_iter()
        .take(top_limit as usize)
        .map(|(s, _, _)| s)
        .collect();
    let top_tools = tx
        .prepare_cached(TOP_TOOLS_SQL)?
        .query_map(params![since, split, split_day, top_limit], |r| {
            Ok(TopTool {
                tool: r.get(0)?,
                executions: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let top_topics = tx
        .prepare_cached(TOP_TOPICS_SQL)?
        .query_map(params![since, split, split_day, top_limit], |r| {
            Ok(TopTopic {
                topic: r.get(0)?,
                occurrences: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
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
    /// each top list holds at most `top_limit` entries. Runs on the reader thread, so it does
    /// not delay writes.
    pub async fn session_analytics(
        &self,
        since_ms: i64,
        top_limit: u32,
    ) -> Result<Analytics, StoreError> {
        self.read(move |conn| compute(conn, since_ms, top_limit))
            .await
    }
}
