//! `agent.send`, `agent.cancel`, `agent.setToolUseCallback`, `agent.approveTool` and
//! `system.contextUsage`.

use flynn_protocol::types::{
    AgentApproveToolParams, AgentApproveToolResult, AgentCancelParams, AgentCancelResult,
    AgentSendParams, AgentSendResult, AgentSetToolUseCallbackParams, AgentSetToolUseCallbackResult,
    DoneEventData, SessionContextUsage, SystemContextUsageParams, SystemContextUsageResult,
    TokenUsage,
};
use flynn_protocol::wire::{Call, RpcError};
use flynn_store::SessionQuery;
use tokio::sync::oneshot;

use super::sessions::validate_session_id;
use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};
use crate::lanes::{Pending, Requester, UserMessage};
use crate::session_config::{Command, StoredSessionConfig, describe, parse_command};

/// Largest message text accepted, in bytes (attachments are bounded by the frame limit).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The session a call targets: `sessionId`, the deprecated `session` alias, or the attached one.
fn target_session(
    call: &Call<ConnectionState>,
    session_id: Option<String>,
    alias: Option<String>,
) -> Result<String, RpcError> {
    let id = match (session_id, alias) {
        (Some(a), Some(b)) if a != b => {
            return Err(RpcError::invalid(
                "params.session",
                "`session` (deprecated alias) and `sessionId` differ; send only `sessionId`",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => call.connection.session_id(),
    };
    validate_session_id(&id, "sessionId")?;
    Ok(id)
}

/// Replies to a chat command like a run would: `done`, then the result.
fn command_reply(call: &Call<ConnectionState>, session_id: &str, text: String) -> AgentSendResult {
    call.events.done(&DoneEventData {
        content: text.clone(),
    });
    AgentSendResult {
        content: text,
        session_id: Some(session_id.to_owned()),
        steered: None,
        usage: TokenUsage {
            input_tokens: 0,
            output_tokens: 0,
        },
    }
}

async fn store_overrides(
    gw: &Gateway,
    session_id: &str,
    f: impl FnOnce(&mut StoredSessionConfig),
) -> Result<StoredSessionConfig, RpcError> {
    gw.store
        .ensure_session(session_id, now_ms())
        .await
        .map_err(store_error)?;
    let record = gw.store.session(session_id).await.map_err(store_error)?;
    let mut stored = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    f(&mut stored);
    gw.store
        .set_session_config(session_id, stored.to_json())
        .await
        .map_err(store_error)?;
    Ok(stored)
}

async fn run_command(
    gw: &Gateway,
    call: &Call<ConnectionState>,
    session_id: &str,
    command: Command,
) -> Result<AgentSendResult, RpcError> {
    let text = match command {
        Command::Stop => {
            let (cancelled, rejected) = gw
                .lanes
                .cancel_session(
                    session_id,
                    "cancelled by /stop",
                    &gw.queue_policy(session_id).await.unwrap_or_default(),
                )
                .await;
            format!(
                "{} {rejected} queued message(s) rejected.",
                if cancelled {
                    "Cancelled the active run."
                } else {
                    "No run was active."
                }
            )
        }
        Command::QueueShow => {
            let policy = gw.queue_policy(session_id).await.unwrap_or_default();
            format!("Queue policy of {session_id}: {}", describe(&policy))
        }
        Command::QueueReset => {
            store_overrides(gw, session_id, |s| s.queue = Default::default()).await?;
            let policy = gw.queue_policy(session_id).await.unwrap_or_default();
            format!(
                "Queue policy reset to the channel default: {}",
                describe(&policy)
            )
        }
        Command::QueueSet(set) => {
            store_overrides(gw, session_id, |s| {
                let q = &mut s.queue;
                q.mode = set.mode.or(q.mode);
                q.cap = set.cap.or(q.cap);
                q.overflow = set.overflow.or(q.overflow);
                q.debounce_ms = set.debounce_ms.or(q.debounce_ms);
                q.summarize_overflow = set.summarize_overflow.or(q.summarize_overflow);
            })
            .await?;
            let policy = gw.queue_policy(session_id).await.unwrap_or_default();
            format!("Queue policy of {session_id} set: {}", describe(&policy))
        }
    };
    Ok(command_reply(call, session_id, text))
}

pub async fn send(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: AgentSendParams,
) -> Result<AgentSendResult, RpcError> {
    let session_id = target_session(&call, p.session_id, p.session)?;
    if p.message.len() > MAX_MESSAGE_BYTES {
        return Err(RpcError::invalid(
            "params.message",
            format!("`message` is over {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if p.message.trim().is_empty() && p.attachments.is_empty() {
        return Err(RpcError::invalid(
            "params.message",
            "`message` is empty; send text or an attachment",
        ));
    }
    for (i, a) in p.attachments.iter().enumerate() {
        if a.mime_type.trim().is_empty() || !a.mime_type.contains('/') {
            return Err(RpcError::invalid(
                format!("params.attachments[{i}].mimeType"),
                "`mimeType` must look like `image/png`",
            ));
        }
    }
    if let Some(command) = parse_command(&p.message) {
        let command = command.map_err(|e| RpcError::invalid("params.message", e))?;
        return run_command(gw, &call, &session_id, command).await;
    }
    let Some(owner) = gw.arc() else {
        return Err(RpcError::internal("the gateway is shutting down"));
    };
    let policy = gw.queue_policy(&session_id).await.unwrap_or_else(|| {
        gw.config()
            .queue_policy_for(flynn_store::split_session_id(&session_id).0)
    });
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        message: UserMessage {
            text: p.message,
            attachments: p.attachments,
            may_use_tools: call
                .connection
                .identity
                .scopes()
                .contains(flynn_protocol::types::Scope::Operator),
            sender_name: call.connection.identity.principal().map(str::to_owned),
        },
        requester: Requester {
            events: call.events.clone(),
            reply,
            steered: false,
        },
    };
    gw.lanes.submit(&owner, &session_id, policy, pending);
    match answer.await {
        Ok(Ok(mut result)) => {
            result.session_id = Some(session_id);
            Ok(result)
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(RpcError::internal(
            "the run ended without a reply (the gateway is shutting down?)",
        )),
    }
}

pub async fn cancel(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: AgentCancelParams,
) -> Result<AgentCancelResult, RpcError> {
    let session_id = target_session(&call, p.session_id, None)?;
    let (cancelled, rejected) = gw
        .lanes
        .cancel_session(
            &session_id,
            "Request cancelled by client",
            &gw.queue_policy(&session_id).await.unwrap_or_default(),
        )
        .await;
    Ok(AgentCancelResult {
        cancelled,
        rejected,
    })
}

pub fn set_tool_use_callback(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: AgentSetToolUseCallbackParams,
) -> Result<AgentSetToolUseCallbackResult, RpcError> {
    let session_id = target_session(&call, p.session_id, None)?;
    gw.approvals
        .set_enabled(&session_id, &call.connection.id, p.enabled);
    Ok(AgentSetToolUseCallbackResult { success: true })
}

pub fn approve_tool(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: AgentApproveToolParams,
) -> Result<AgentApproveToolResult, RpcError> {
    Ok(AgentApproveToolResult {
        accepted: gw.approvals.answer(&p.approval_id, (p.approved, p.reason)),
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
        let budget = crate::agent::session_budget(gw, &r.id, r.config.as_deref()).await?;
        sessions.push(SessionContextUsage {
            session_id: r.id,
            budget,
        });
    }
    Ok(SystemContextUsageResult { sessions })
}
