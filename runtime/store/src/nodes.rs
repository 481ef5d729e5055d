//! Last-known state of companion nodes (location, status, push token), keyed by node id, so
//! it survives restarts and reconnects. Push tokens are secrets: mask them before showing.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::check_json;
use crate::{Store, StoreError};

/// A node's push registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTokenRecord {
    /// `apns` or `fcm` (not checked here).
    pub provider: String,
    pub token: String,
    pub updated_at_ms: i64,
}

/// Everything stored about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node_id: String,
    /// JSON text.
    pub location: Option<String>,
    pub location_at_ms: Option<i64>,
    /// JSON text.
    pub status: Option<String>,
    pub status_at_ms: Option<i64>,
    pub push: Option<PushTokenRecord>,
}

/// Which part of a node row an upsert writes; the SQL fragments are constants.
enum Part {
    Location,
    Status,
}

fn upsert_part(
    conn: &Connection,
    part: Part,
    node_id: &str,
    json: &str,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let sql = match part {
        Part::Location => {
            "INSERT INTO nodes (node_id, location, location_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (node_id) DO UPDATE SET
                 location = excluded.location, location_at_ms = excluded.location_at_ms"
        }
        Part::Status => {
            "INSERT INTO nodes (node_id, status, status_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (node_id) DO UPDATE SET
                 status = excluded.status, status_at_ms = excluded.status_at_ms"
        }
    };
    conn.prepare_cached(sql)?
        .execute(params![node_id, json, at_ms])
        .map(|_| ())
}

impl Store {
    /// Stores the node's last-known location (JSON text), replacing the previous one.
    pub async fn save_node_location(
        &self,
        node_id: &str,
        location_json: String,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        check_json("location", &location_json)?;
        let node_id = node_id.to_owned();
        self.call(move |conn| {
            Ok(upsert_part(
                conn,
                Part::Location,
                &node_id,
                &location_json,
                at_ms,
            )?)
        })
        .await
    }

    /// The node's last-known location (JSON text).
    pub async fn node_location(&self, node_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.node(node_id).await?.and_then(|n| n.location))
    }

    /// Stores the node's last status report (JSON text), replacing the previous one.
    pub async fn save_node_status(
        &self,
        node_id: &str,
        status_json: String,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        check_json("status", &status_json)?;
        let node_id = node_id.to_owned();
        self.call(move |conn| {
            Ok(upsert_part(
                conn,
                Part::Status,
                &node_id,
                &status_json,
                at_ms,
            )?)
        })
        .await
    }

    /// The node's last status report (JSON text).
    pub async fn node_status(&self, node_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.node(node_id).await?.and_then(|n| n.status))
    }

    /// Stores the node's push token, replacing the previous one.
    pub async fn save_push_token(
        &self,
        node_id: &str,
        provider: &str,
        token: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let (node_id, provider, token) =
            (node_id.to_owned(), provider.to_owned(), token.to_owned());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO nodes (node_id, push_provider, push_token, push_updated_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id) DO UPDATE SET
                     push_provider = excluded.push_provider, push_token = excluded.push_token,
                     push_updated_ms = excluded.push_updated_ms",
                params![node_id, provider, token, at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// The node's push token, if one was registered.
    pub async fn push_token(&self, node_id: &str) -> Result<Option<PushTokenRecord>, StoreError> {
        Ok(self.node(node_id).await?.and_then(|n| n.push))
    }

    /// Everything stored about one node.
    pub async fn node(&self, node_id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let node_id = node_id.to_owned();
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = ?1"
                ))?
                .query_row([&node_id], node_from_row)
                .optional()?)
        })
        .await
    }

    /// Every stored node, by node id.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"
            ))?;
            let rows = stmt
                .query_map([], node_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

const NODE_COLUMNS: &str = "node_id, location, location_at_ms, status, status_at_ms, \
                            push_provider, push_token, push_updated_ms";

fn node_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRecord> {
    let provider: Option<String> = row.get(5)?;
    let token: Option<String> = row.get(6)?;
    let updated: Option<i64> = row.get(7)?;
    let push = match (provider, token, updated) {
        (Some(provider), Some(token), Some(updated_at_ms)) => Some(PushTokenRecord {
            provider,
            token,
            updated_at_ms,
        }),
        _ => None,
    };
    Ok(NodeRecord {
        node_id: row.get(0)?,
        location: row.get(1)?,
        location_at_ms: row.get(2)?,
        status: row.get(3)?,
        status_at_ms: row.get(4)?,
        push,
    })
}
