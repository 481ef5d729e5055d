//! `system.presence` (senders seen, online/offline from an inactivity threshold),
//! `system.sessionAnalytics` (aggregates from the stored history) and `system.contextUsage`
//! (the context budget of every live session): `impl InsightsMethods for Gateway` (at the end)
//! routes each to its function.

use flynn_protocol::InsightsMethods;
use flynn_protocol::types::{
    PresenceEntry, PresenceStatus, PresenceSummary, SessionAnalyticsDay,
    SessionAnalyticsTopSession, SessionAnalyticsTopTool, SessionAnalyticsTopTopic,
    SessionContextUsage, SystemContextUsageParams, SystemContextUsageResult, SystemPresenceParams,
    SystemPresenceResult, SystemSessionAnalyticsParams, SystemSessionAnalyticsResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use flynn_store::SessionQuery;

use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};

/// Senders considered for the summary and filters (the store returns most recent first).
const PRESENCE_SCAN: u32 = 10_000;

pub async fn presence(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemPresenceParams,
) -> Result<SystemPresenceResult, RpcError> {
    let threshold_ms = i64::try_from(
        gw.config()
            .presence
            .online_threshold_seconds
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let now = now_ms();
    let records = gw
        .store
        .presence(p.channel.as_deref(), PRESENCE_SCAN)
        .await
        .map_err(store_error)?;
    // Senders paired on a chat channel are marked (crate::channels::pairing).
    let paired: std::collections::HashSet<(String, String)> = gw
        .store
        .paired_senders(p.channel.as_deref())
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|s| (s.channel, s.sender_id))
        .collect();
    let entries: Vec<PresenceEntry> = records
        .into_iter()
        .map(|r| {
            let online = now.saturating_sub(r.last_seen_ms) <= threshold_ms;
            let is_paired = paired.contains(&(r.channel.clone(), r.sender_id.clone()));
            PresenceEntry {
                paired: is_paired.then_some(true),
                channel: r.channel,
                sender_id: r.sender_id,
                sender_name: r.sender_name,
                first_seen_at: r.first_seen_ms.max(0) as u64,
                last_seen_at: r.last_seen_ms.max(0) as u64,
                message_count: r.message_count,
                status: if online { "online" } else { "offline" }.to_owned(),
            }
        })
        .collect();
    let online = entries.iter().filter(|e| e.status == "online").count() as u64;
    let summary = PresenceSummary {
        total: entries.len() as u64,
        online,
        offline: entries.len() as u64 - online,
    };
    let wanted = p.status.map(|s| match s {
        PresenceStatus::Online => "online",
        PresenceStatus::Offline => "offline",
    });
    let limit = usize::try_from(p.limit.get()).unwrap_or(usize::MAX);
    let presence = entries
        .into_iter()
        .filter(|e| wanted.is_none_or(|w| e.status == w))
        .take(limit)
        .collect();
    Ok(SystemPresenceResult { presence, summary })
}

pub async fn session_analytics(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemSessionAnalyticsParams,
) -> Result<SystemSessionAnalyticsResult, RpcError> {
    let days = i64::try_from(p.days.get()).unwrap_or(i64::MAX);
    let since = now_ms().saturating_sub(days.saturating_mul(86_400_000));
    let top = u32::try_from(p.top_limit.get()).unwrap_or(u32::MAX);
    let a = gw
        .store
        .session_analytics(since, top)
        .await
        .map_err(store_error)?;
    Ok(SystemSessionAnalyticsResult {
        daily: a
            .daily
            .into_iter()
            .map(|d| SessionAnalyticsDay {
                day: d.day,
                sessions: d.sessions,
                messages: d.messages,
            })
            .collect(),
        top_sessions: a
            .top_sessions
            .into_iter()
            .map(|s| SessionAnalyticsTopSession {
                session_id: s.session_id,
                messages: s.messages,
                // Epoch seconds, as the protocol document shows for this field.
                last_activity: (s.last_activity_ms.max(0) / 1000) as u64,
            })
            .collect(),
        top_tools: a
            .top_tools
            .into_iter()
            .map(|t| SessionAnalyticsTopTool {
                tool_name: t.tool,
                executions: t.executions,
            })
            .collect(),
        top_topics: a
            .top_topics
            .into_iter()
            .map(|t| SessionAnalyticsTopTopic {
                topic: t.topic,
                occurrences: t.occurrences,
            })
            .collect(),
        average_messages_per_session: (a.average_messages_per_session * 100.0).round() / 100.0,
        total_sessions: a.total_sessions,
        total_messages: a.total_messages,
    })
}

/// Sessions reported by `system.contextUsage`: the most recently active ones.
const CONTEXT_USAGE_SESSIONS: u32 = 500;

pub async fn context_usage(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemContextUsageParams,
) -> Result<SystemContextUsageResult, RpcError> {
    let (records, _) = gw
        .store
        .list_sessions(SessionQuery {
            frontend: None,
            only_ids: None,
            limit: CONTEXT_USAGE_SESSIONS,
            offset: 0,
        })
        .await
        .map_err(store_error)?;
    let mut sessions = Vec::with_capacity(records.len());
    for r in records {
        let budget = gw.lanes.session_budget(&r.id, r.config.as_deref()).await?;
        sessions.push(SessionContextUsage {
            session_id: r.id,
            budget,
        });
    }
    Ok(SystemContextUsageResult { sessions })
}

impl InsightsMethods for Gateway {
    fn system_presence(
        &self,
        call: Call<ConnectionState>,
        params: SystemPresenceParams,
    ) -> Reply<'_, SystemPresenceResult> {
        Reply::later(presence(self, call, params))
    }
    fn system_session_analytics(
        &self,
        call: Call<ConnectionState>,
        params: SystemSessionAnalyticsParams,
    ) -> Reply<'_, SystemSessionAnalyticsResult> {
        Reply::later(session_analytics(self, call, params))
    }
    fn system_context_usage(
        &self,
        call: Call<ConnectionState>,
        params: SystemContextUsageParams,
    ) -> Reply<'_, SystemContextUsageResult> {
        Reply::later(context_usage(self, call, params))
    }
}
