//! `sessions.list`, `sessions.get`, `sessions.create`, `sessions.delete`.
//!
//! A connection's default session `ws:<connectionId>` is live from the moment the connection
//! opens but is written to the store only when something happens in it (a message, an explicit
//! `sessions.create`), so thousands of idle connections cost no SQLite writes.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use flynn_protocol::SessionsMethods;
use flynn_protocol::types::{
    HistoryMessage, HistoryRole, SessionConfig, SessionElevation, SessionSummary,
    SessionsCreateParams, SessionsCreateResult, SessionsDeleteParams, SessionsDeleteResult,
    SessionsGetParams, SessionsGetResult, SessionsListParams, SessionsListResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use flynn_store::{Role, SessionQuery, SessionRecord, split_session_id};

use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};
use flynn_agent::session_config::StoredSessionConfig;

/// Fails with code 1 unless the session is stored or live in this process. The id has met
/// the spec's `SessionId` (a params type or the connection's own session).
pub async fn require_session(gw: &Gateway, session_id: &str) -> Result<(), RpcError> {
    if live_session_ids(gw).contains(session_id) {
        return Ok(());
    }
    match gw.store.session(session_id).await.map_err(store_error)? {
        Some(_) => Ok(()),
        None => Err(RpcError::session_not_found(session_id)),
    }
}

/// `sessions.create` ids are `frontend:userId`: both parts non-empty, no whitespace (on top
/// of the spec's `SessionId`, which the params type checked).
fn validate_new_session_id(id: &str) -> Result<(), RpcError> {
    let well_formed = id
        .split_once(':')
        .is_some_and(|(frontend, user)| !frontend.is_empty() && !user.is_empty())
        && !id.chars().any(char::is_whitespace);
    if well_formed {
        Ok(())
    } else {
        Err(RpcError::invalid(
            "params.sessionId",
            format!(
                "`{id}` is not `frontend:userId` (both parts non-empty, no whitespace), e.g. `telegram:123456`"
            ),
        ))
    }
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
        queue: flynn_agent::session_config::to_wire_queue(&policy),
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
        run_id: gw.lanes.runs.running(&record.id).map(|r| r.to_string()),
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
        run_id: gw.lanes.runs.running(id).map(|r| r.to_string()),
    }
}

pub async fn list(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: SessionsListParams,
) -> Result<SessionsListResult, RpcError> {
    let connection = &call.connection;
    if !connection.identity.is_session_limited() {
        return list_all(gw, p).await;
    }
    // A token limited to some sessions sees only those (and its own): the whole list,
    // filtered, then paged here.
    let limit = usize::try_from(p.limit.get()).unwrap_or(usize::MAX);
    let offset = usize::try_from(p.offset).unwrap_or(usize::MAX);
    let everything = list_all(
        gw,
        SessionsListParams {
            limit: std::num::NonZeroU64::MAX,
            offset: 0,
            ..p
        },
    )
    .await?;
    let visible: Vec<SessionSummary> = everything
        .sessions
        .into_iter()
        .filter(|s| connection.identity.session_allowed(&s.id) || connection.owns_session(&s.id))
        .collect();
    let total = visible.len() as u64;
    Ok(SessionsListResult {
        sessions: visible.into_iter().skip(offset).take(limit).collect(),
        total,
    })
}

/// Every session the list's params select, paged, for a connection that may see all.
async fn list_all(gw: &Gateway, p: SessionsListParams) -> Result<SessionsListResult, RpcError> {
    let limit = u32::try_from(p.limit.get()).unwrap_or(u32::MAX);
    let offset = u32::try_from(p.offset)
        .map_err(|_| RpcError::invalid("params.offset", "`offset` is too large"))?;
    if p.include_persisted {
        list_live_and_persisted(gw, p.frontend, limit, offset).await
    } else {
        list_live(gw, p.frontend, limit, offset).await
    }
}

/// Live session ids, restricted to `frontend` when one is given.
fn live_ids_of_frontend(gw: &Gateway, frontend: Option<&str>) -> Vec<String> {
    live_session_ids(gw)
        .into_iter()
        .filter(|id| frontend.is_none_or(|f| split_session_id(id).0 == f))
        .collect()
}

/// Live sessions with nothing stored yet come first (they are the most recent), then the
/// store's, newest activity first.
async fn list_live_and_persisted(
    gw: &Gateway,
    frontend: Option<String>,
    limit: u32,
    offset: u32,
) -> Result<SessionsListResult, RpcError> {
    let probe: Vec<String> = live_session_ids(gw).into_iter().collect();
    let (stored_live, _) = gw
        .store
        .list_sessions(SessionQuery {
            frontend: None,
            only_ids: Some(probe),
            limit: u32::MAX,
            offset: 0,
        })
        .await
        .map_err(store_error)?;
    let stored_ids: BTreeSet<&str> = stored_live.iter().map(|r| r.id.as_str()).collect();
    let fresh: Vec<SessionSummary> = live_ids_of_frontend(gw, frontend.as_deref())
        .into_iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .map(|id| unstored_summary(gw, &id))
        .collect();
    let fresh_count = fresh.len() as u64;
    let skip_fresh = (offset as usize).min(fresh.len());
    let mut sessions: Vec<SessionSummary> = fresh
        .into_iter()
        .skip(skip_fresh)
        .take(limit as usize)
        .collect();
    let store_offset = offset.saturating_sub(fresh_count as u32);
    let store_limit = limit.saturating_sub(sessions.len() as u32);
    let (records, stored_total) = gw
        .store
        .list_sessions(SessionQuery {
            frontend,
            only_ids: None,
            limit: store_limit,
            offset: store_offset,
        })
        .await
        .map_err(store_error)?;
    sessions.extend(records.iter().map(|r| summary(gw, r)));
    Ok(SessionsListResult {
        sessions,
        total: stored_total + fresh_count,
    })
}

/// Live sessions only: stored ones with their figures, plus live ones not stored yet.
async fn list_live(
    gw: &Gateway,
    frontend: Option<String>,
    limit: u32,
    offset: u32,
) -> Result<SessionsListResult, RpcError> {
    let live = live_ids_of_frontend(gw, frontend.as_deref());
    let (records, _) = gw
        .store
        .list_sessions(SessionQuery {
            frontend,
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

/// The store's role as the wire's (why they are two enums: `flynn_store::Role`'s docs). No
/// wildcard arm: a role added to the store must be mapped here.
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
                run_id: gw.lanes.runs.running(&record.id).map(|r| r.to_string()),
                id: record.id,
                created_at: ms_to_datetime(record.created_at_ms),
                last_active_at: ms_to_datetime(record.last_active_at_ms),
                history,
            })
        }
        None if live_session_ids(gw).contains(p.session_id.as_str()) => {
            let now = ms_to_datetime(now_ms());
            Ok(SessionsGetResult {
                run_id: gw.lanes.runs.running(&p.session_id).map(|r| r.to_string()),
                id: p.session_id.into(),
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
            validate_new_session_id(&id)?;
            id.into()
        }
        None => format!("ws:{}", uuid::Uuid::new_v4().simple()),
    };
    let was_live = live_session_ids(gw).contains(&session_id);
    let stored_now = gw
        .store
        .ensure_session(&session_id, now_ms())
        .await
        .map_err(store_error)?;
    // A live session (another connection's, not yet written) is resumed, not created.
    let created = stored_now && !was_live;
    if !stored_now {
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
    gw.lanes
        .cancel_session(
            &p.session_id,
            "the session was deleted",
            &gw.queue_policy(&p.session_id).await.unwrap_or_default(),
        )
        .await;
    let deleted = gw
        .store
        .delete_session(&p.session_id)
        .await
        .map_err(store_error)?;
    gw.lanes.runs.forget_session(&p.session_id);
    let live = live_session_ids(gw).contains(p.session_id.as_str());
    if !deleted && !live {
        return Err(RpcError::session_not_found(&p.session_id));
    }
    // Connections attached to it go back to their own default session.
    for connection in gw.connections.all() {
        if connection.session_id() == *p.session_id {
            connection.attach(&format!("ws:{}", connection.id()));
        }
    }
    Ok(SessionsDeleteResult { success: true })
}

impl SessionsMethods for Gateway {
    fn sessions_list(
        &self,
        call: Call<ConnectionState>,
        params: SessionsListParams,
    ) -> Reply<'_, SessionsListResult> {
        Reply::later(list(self, call, params))
    }
    fn sessions_get(
        &self,
        call: Call<ConnectionState>,
        params: SessionsGetParams,
    ) -> Reply<'_, SessionsGetResult> {
        Reply::later(get(self, call, params))
    }
    fn sessions_create(
        &self,
        call: Call<ConnectionState>,
        params: SessionsCreateParams,
    ) -> Reply<'_, SessionsCreateResult> {
        Reply::later(create(self, call, params))
    }
    fn sessions_delete(
        &self,
        call: Call<ConnectionState>,
        params: SessionsDeleteParams,
    ) -> Reply<'_, SessionsDeleteResult> {
        Reply::later(delete(self, call, params))
    }
}
