//! Tool executions, kept for the session's record and for the top-tools analytics.

use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::error::check_json;
use crate::{Store, StoreError, sessions};

/// One finished tool execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRun {
    pub session_id: String,
    /// Tool name, e.g. `shell.exec`.
    pub tool: String,
    /// JSON text of the arguments.
    pub args: String,
    /// JSON text of the result (or of the error).
    pub result: String,
    pub success: bool,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}

/// A stored tool run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRunRecord {
    pub id: i64,
    #[serde(flatten)]
    pub run: ToolRun,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ToolRunRecord> {
    Ok(ToolRunRecord {
        id: row.get(0)?,
        run: ToolRun {
            session_id: row.get(1)?,
            tool: row.get(2)?,
            args: row.get(3)?,
            result: row.get(4)?,
            success: row.get(5)?,
            started_at_ms: row.get(6)?,
            finished_at_ms: row.get(7)?,
        },
    })
}

impl Store {
    /// Records a tool run (creating its session if missing, like messages do) and returns its
    /// id. `args` and `result` must be JSON text.
    pub async fn record_tool_run(&self, run: ToolRun) -> Result<i64, StoreError> {
        check_json("args", &run.args)?;
        check_json("result", &run.result)?;
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            sessions::ensure(&tx, &run.session_id, run.started_at_ms)?;
            tx.prepare_cached(
                "INSERT INTO tool_runs
                     (session_id, tool, args, result, success, started_at_ms, finished_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                run.session_id,
                run.tool,
                run.args,
                run.result,
                run.success,
                run.started_at_ms,
                run.finished_at_ms
            ])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// The session's last `limit` tool runs, oldest first.
    pub async fn tool_runs(
        &self,
        session_id: &str,
        limit: u32,
    ) -> Result<Vec<ToolRunRecord>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, session_id, tool, args, result, success, started_at_ms, finished_at_ms
                 FROM (SELECT * FROM tool_runs WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2)
                 ORDER BY id ASC",
            )?;
            let rows = stmt
                .query_map(params![session_id, limit], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
