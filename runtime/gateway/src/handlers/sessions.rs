//! `sessions.list`, `sessions.get`, `sessions.create`, `sessions.delete`.
//!
//! A connection's default session `ws:<connectionId>` is live from the moment the connection
//! opens but is written to the store only when something happens in it (a message, an explicit
//! `sessions.create`), so thousands of idle connections cost no SQLite writes.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use flynn_protocol::types::{
    HistoryMessage, HistoryRole, SessionConfig, SessionElevation, SessionSummary,
    SessionsCreateParams, SessionsCreateResult, SessionsDeleteParams, SessionsDeleteResult,
    SessionsGetParams, SessionsGetResult, SessionsListParams, SessionsListResult,
};
use flynn_protocol::wire::{Call, RpcError};
use flynn_store::{Role, SessionQuery, SessionRecord, split_session_id};

use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};
use crate::session_config::StoredSessionConfig;

/// Longest accepted session id.
const MAX_SESSION_ID: usize = 256;

/// Checks a client-supplied session id; `field` names it in the error.
pub fn validate_session_id(id: &str, field: &str) -> Result<(), RpcError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID || id.chars().any(char::is_control) {
        return Err(RpcError::invalid(
            format!("params.{field}"),
            format!(
                "`{field}` must be 1-{MAX_SESSION_ID} characters without control characters, e.g. `telegram:123456`"
            ),
        ));
    }
    Ok(())
}

/// Sessions attached to open connections.
fn live_session_ids(gw: &Gateway) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = gw
        .connections
        .all()
        .iter()
        .map(|c| c.session_id())
        .collect();
    ids.extend(gw.lanes.active_session_ids());
    ids
}

fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The effective configuration of a session: its overrides over the channel's defaults.
pub fn summary_config(gw: &Gateway, session_id: &str, stored: Option<&str>) -> SessionConfig {
    let (frontend, _) = split_session_id(session_id);
    let config = gw.config();
    let overrides = StoredSessionConfig::parse(stored);
    let policy = overrides.effective_queue(&config.queue_policy_for(frontend));
    SessionConfig {
        model_tier: overrides
            .model_tier
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        queue: crate::session_config::to_wire_queue(&policy),
        elevation: SessionElevation {
            active: false,
            until_ms: None,
        },
    }
}

fn summary(gw: &Gateway, record: &SessionRecord) -> SessionSummary {
    SessionSummary {
        id: record.id.clone(),
        frontend: record.frontend.clone(),
        user_id: record.user_id.clone(),
        message_count: record.message_count,
        last_message_at: record.last_message_at_ms.map(|ms| ms.max(0) as u64),
        config: summary_config(gw, &record.id, record.config.as_deref()),
    }
}

fn unstored_summary(gw: &Gateway, id: &str) -> SessionSummary {
    let (frontend, user_id) = split_session_id(id);
    SessionSummary {
        id: id.to_owned(),
        frontend: frontend.to_owned(),
        user_id: user_id.to_owned(),
        message_count: 0,
        last_message_at: None,
        config: summary_config(gw, id, None),
    }
}

pub async fn list(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SessionsListParams,
) -> Result<SessionsListResult, RpcError> {
    let limit = u32::try_from(p.limit.get()).unwrap_or(u32::MAX);
    let offset = u32::try_from(p.offset)
        .map_err(|_| RpcError::invalid("params.offset", "`offset` is too large"))?;
    if p.include_persisted {
        let (records, total) = gw
            .store
            .list_sessions(SessionQuery {
                frontend: p.frontend.clone(),
                only_ids: None,
                limit,
                offset,
            })
            .await
            .map_err(store_error)?;
        let sessions = records.iter().map(|r| summary(gw, r)).collect();
        return Ok(SessionsListResult { sessions, total });
    }
    // Live sessions only: stored ones with their figures, plus live ones not stored yet.
    let live: Vec<String> = live_session_ids(gw)
        .into_iter()
        .filter(|id| {
            p.frontend
                .as_deref()
                .is_none_or(|f| split_session_id(id).0 == f)
        })
        .collect();
    let (records, _) = gw
        .store
        .list_sessions(SessionQuery {
            frontend: p.frontend.clone(),
            only_ids: Some(live.clone()),
            limit: u32::MAX,
            offset: 0,
        })
        .await
        .map_err(store_error)?;
    let stored: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut all: Vec<SessionSummary> = records.iter().map(|r| summary(gw, r)).collect();
    all.extend(
        live.iter()
            .filter(|id| !stored.contains(id.as_str()))
            .map(|id| unstored_summary(gw, id)),
    );
    let total = all.len() as u64;
    let sessions = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(SessionsListResult { sessions, total })
}

fn history_role(role: Role) -> HistoryRole {
    match role {
        Role::User => HistoryRole::User,
        Role::Assistant => HistoryRole::Assistant,
        Role::System => HistoryRole::System,
        Role::Tool => HistoryRole::Tool,
    }
}

pub async fn get(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SessionsGetParams,
) -> Result<SessionsGetResult, RpcError> {
    validate_session_id(&p.session_id, "sessionId")?;
    let limit = u32::try_from(p.history_limit.get()).unwrap_or(u32::MAX);
    match gw.store.session(&p.session_id).await.map_err(store_error)? {
        Some(record) => {
            let history = gw
                .store
                .history(&p.session_id, Some(limit))
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|m| HistoryMessage {
                    role: history_role(m.role),
                    content: m.content,
                })
                .collect();
            Ok(SessionsGetResult {
                id: record.id,
                created_at: ms_to_datetime(record.created_at_ms),
                last_active_at: ms_to_datetime(record.last_active_at_ms),
                history,
            })
        }
        None if live_session_ids(gw).contains(&p.session_id) => {
            let now = ms_to_datetime(now_ms());
            Ok(SessionsGetResult {
                id: p.session_id,
                created_at: now,
                last_active_at: now,
                history: Vec::new(),
            })
        }
        None => Err(RpcError::session_not_found(&p.session_id)),
    }
}

pub async fn create(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: SessionsCreateParams,
) -> Result<SessionsCreateResult, RpcError> {
    let session_id = match p.session_id {
        Some(id) => {
            validate_session_id(&id, "sessionId")?;
            id
        }
        None => format!("ws:{}", uuid::Uuid::new_v4().simple()),
    };
    let created = gw
        .store
        .ensure_session(&session_id, now_ms())
        .await
        .map_err(store_error)?;
    if !created {
        // Resuming counts as activity.
        gw.store
            .touch_session(&session_id, now_ms())
            .await
            .map_err(store_error)?;
    }
    call.connection.attach(&session_id);
    Ok(SessionsCreateResult {
        session_id,
        created,
    })
}

pub async fn delete(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SessionsDeleteParams,
) -> Result<SessionsDeleteResult, RpcError> {
    validate_session_id(&p.session_id, "sessionId")?;
    gw.lanes
        .cancel_session(&p.session_id, "the session was deleted")
        .await;
    let deleted = gw
        .store
        .delete_session(&p.session_id)
        .await
        .map_err(store_error)?;
    if !deleted && !live_session_ids(gw).contains(&p.session_id) {
        return Err(RpcError::session_not_found(&p.session_id));
    }
    Ok(SessionsDeleteResult { success: true })
}
