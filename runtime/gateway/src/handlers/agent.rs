//! `agent.send`, `agent.cancel`, `agent.attach`, `agent.setToolUseCallback` and
//! `agent.approveTool`: `impl AgentMethods for Gateway` (at the end) routes each to its function.

use flynn_protocol::AgentMethods;
use flynn_protocol::EmitEvents as _;
use flynn_protocol::types::{
    self as types, AgentApproveToolParams, AgentApproveToolResult, AgentAttachParams,
    AgentAttachResult, AgentCancelParams, AgentCancelResult, AgentSendParams, AgentSendResult,
    AgentSetToolUseCallbackParams, AgentSetToolUseCallbackResult, DoneEventData, SessionId,
    TokenUsage,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use tokio::sync::oneshot;

use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};
use flynn_agent::lanes::{Pending, Requester, UserMessage};
use flynn_agent::session_config::{Command, StoredSessionConfig, describe, parse_command};

/// Largest message text accepted, in bytes (attachments are bounded by the frame limit).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Longest `idempotencyKey` accepted, in bytes.
const MAX_KEY_BYTES: usize = 200;

/// The session a call targets: `sessionId`, the deprecated `session` alias, or the attached one.
/// A given id met the spec's `SessionId` when the params were decoded.
fn target_session(
    call: &Call<ConnectionState>,
    session_id: Option<SessionId>,
    alias: Option<SessionId>,
) -> Result<String, RpcError> {
    let id = match (session_id, alias) {
        (Some(a), Some(b)) if a != b => {
            return Err(RpcError::invalid(
                "params.session",
                "`session` (deprecated alias) and `sessionId` differ; send only `sessionId`",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id.into(),
        (None, None) => call.connection.session_id(),
    };
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
        run_id: None,
        replayed: None,
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
    check_message(&p.message, &p.attachments)?;
    if let Some(command) = parse_command(&p.message) {
        let command = command.map_err(|e| RpcError::invalid("params.message", e))?;
        return run_command(gw, &call, &session_id, command).await;
    }
    let policy = gw.queue_policy(&session_id).await.unwrap_or_else(|| {
        gw.config()
            .queue_policy_for(flynn_store::split_session_id(&session_id).0)
    });
    let key = p.idempotency_key;
    if let Some(key) = &key {
        check_key(key)?;
        let fingerprint = flynn_agent::runs::fingerprint(&p.message, &p.attachments);
        if let Some(answer) = claim_key(gw, &call, &session_id, key, &fingerprint).await? {
            return answer;
        }
    }
    let (reply, answer) = oneshot::channel();
    let answer = match &key {
        None => answer,
        Some(key) => keep_outcome(gw, &session_id, key, answer),
    };
    let message = user_message(&call, p.message, p.attachments);
    let requester = Requester {
        events: call.events.clone(),
        reply,
        steered: false,
        key,
    };
    gw.lanes
        .submit(&session_id, policy, Pending { message, requester });
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

/// The message's own limits: its size, not empty (unless it carries attachments), and each
/// attachment's MIME type shaped like one.
fn check_message(message: &str, attachments: &[types::Attachment]) -> Result<(), RpcError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(RpcError::invalid(
            "params.message",
            format!("`message` is over {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if message.trim().is_empty() && attachments.is_empty() {
        return Err(RpcError::invalid(
            "params.message",
            "`message` is empty; send text or an attachment",
        ));
    }
    for (i, a) in attachments.iter().enumerate() {
        if a.mime_type.trim().is_empty() || !a.mime_type.contains('/') {
            return Err(RpcError::invalid(
                format!("params.attachments[{i}].mimeType"),
                "`mimeType` must look like `image/png`",
            ));
        }
    }
    Ok(())
}

/// An idempotency key is 1 to `MAX_KEY_BYTES` bytes.
fn check_key(key: &str) -> Result<(), RpcError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(RpcError::invalid(
            "params.idempotencyKey",
            format!("`idempotencyKey` must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The message as the lane takes it: tools only for a requester holding `operator`, the
/// sender named by the connection's principal.
fn user_message(
    call: &Call<ConnectionState>,
    text: String,
    attachments: Vec<types::Attachment>,
) -> UserMessage {
    let identity = &call.connection.identity;
    UserMessage {
        text,
        attachments,
        may_use_tools: identity
            .scopes()
            .contains(flynn_protocol::types::Scope::Operator),
        sender_name: identity.principal().map(str::to_owned),
        presence_sender: None,
    }
}

/// How long a key's record is kept, as the oldest creation time still valid.
fn key_not_before(gw: &Gateway) -> i64 {
    let ttl = i64::try_from(gw.config().agent.idempotency_ttl_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX);
    now_ms().saturating_sub(ttl)
}

fn key_mismatch(key: &str) -> RpcError {
    RpcError::invalid(
        "params.idempotencyKey",
        format!(
            "idempotencyKey `{key}` was already used in this session with another message; use a new key for a new message"
        ),
    )
}

/// Waits for the reply of a repeat that joined a turn or a waiting key.
async fn joined(
    answer: oneshot::Receiver<flynn_agent::lanes::Reply>,
    session_id: &str,
) -> Result<AgentSendResult, RpcError> {
    match answer.await {
        Ok(Ok(mut result)) => {
            result.session_id = Some(session_id.to_owned());
            result.steered = None;
            Ok(result)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RpcError::internal(
            "the turn of this idempotencyKey ended without a reply (the gateway is shutting down?)",
        )),
    }
}

/// A stored reply given again to a repeated key.
fn replayed(reply: flynn_agent::lanes::Reply, session_id: &str) -> flynn_agent::lanes::Reply {
    reply.map(|r| AgentSendResult {
        replayed: Some(true),
        session_id: Some(session_id.to_owned()),
        steered: None,
        ..r
    })
}

type Answered = Option<Result<AgentSendResult, RpcError>>;

/// Claims `key` for this send. `Some` when the key already has an answer (or names another
/// message); `None` when this send runs a new turn (its key is then recorded in the store).
async fn claim_key(
    gw: &Gateway,
    call: &Call<ConnectionState>,
    session_id: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Answered, RpcError> {
    use flynn_agent::run_registry::Claim;
    match gw
        .lanes
        .runs
        .claim_key(session_id, key, fingerprint, &call.events)
    {
        Claim::Mismatch => Err(key_mismatch(key)),
        Claim::Waiting(answer) => Ok(Some(joined(answer, session_id).await)),
        Claim::Run(run) => {
            // Running: the repeat follows it from its first kept event. Ended but still kept:
            // its kept events and its reply at once, marked `replayed`.
            let ended = run.log().finished();
            let answer = run
                .log()
                .attach(call.events.clone(), 0, true)
                .map_err(flynn_agent::runs::AttachError::into_rpc)?;
            let reply = joined(answer, session_id).await;
            Ok(Some(if ended {
                replayed(reply, session_id)
            } else {
                reply
            }))
        }
        Claim::New => claim_new_key(gw, call, session_id, key, fingerprint).await,
    }
}

/// A key no live run holds: answered from the store when a turn under it already ended
/// (same fingerprint), refused when it was used for another message, else recorded for this
/// turn (`Ok(None)`: go on and run it).
async fn claim_new_key(
    gw: &Gateway,
    call: &Call<ConnectionState>,
    session_id: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Answered, RpcError> {
    let stored = gw
        .store
        .idempotency_key(session_id, key, key_not_before(gw))
        .await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            let e = store_error(e);
            gw.lanes.runs.release_key(session_id, key, &Err(e.clone()));
            return Err(e);
        }
    };
    match stored {
        Some(record) if record.fingerprint != fingerprint => {
            let e = key_mismatch(key);
            gw.lanes.runs.release_key(session_id, key, &Err(e.clone()));
            Err(e)
        }
        Some(record) => {
            let reply = match record.outcome.as_deref() {
                Some(text) => replayed(flynn_agent::runs::decode_outcome(text), session_id),
                None => Err(flynn_agent::runs::interrupted(key)),
            };
            gw.lanes.runs.release_key(session_id, key, &reply);
            flynn_agent::runs::final_event(&call.events, &reply);
            Ok(Some(reply))
        }
        None => {
            // Expired keys go as new ones come (one indexed delete), so the table holds
            // at most the keys of one TTL.
            if let Err(e) = gw.store.purge_idempotency_keys(key_not_before(gw)).await {
                tracing::warn!(error = %e, "could not purge expired idempotency keys");
            }
            let record = flynn_store::IdempotencyRecord {
                session_id: session_id.to_owned(),
                key: key.to_owned(),
                fingerprint: fingerprint.to_owned(),
                run_id: String::new(),
                outcome: None,
                created_at_ms: now_ms(),
            };
            if let Err(e) = gw.store.put_idempotency_key(record).await {
                let e = store_error(e);
                gw.lanes.runs.release_key(session_id, key, &Err(e.clone()));
                return Err(e);
            }
            Ok(None)
        }
    }
}

/// Stores the reply of a keyed send when it comes, whether or not its connection is still
/// there, then passes it on; repeats still waiting for the key get it too.
fn keep_outcome(
    gw: &Gateway,
    session_id: &str,
    key: &str,
    answer: oneshot::Receiver<flynn_agent::lanes::Reply>,
) -> oneshot::Receiver<flynn_agent::lanes::Reply> {
    let (tx, rx) = oneshot::channel();
    let (store, runs) = (gw.store.clone(), gw.lanes.runs.clone());
    let (session_id, key) = (session_id.to_owned(), key.to_owned());
    tokio::spawn(async move {
        let reply = answer.await.unwrap_or_else(|_| {
            Err(RpcError::internal(
                "the run ended without a reply (the gateway is shutting down?)",
            ))
        });
        let run_id = reply
            .as_ref()
            .ok()
            .and_then(|r| r.run_id.clone())
            .unwrap_or_default();
        if let Err(e) = store
            .finish_idempotency_key(
                &session_id,
                &key,
                &run_id,
                flynn_agent::runs::encode_outcome(&reply),
            )
            .await
        {
            tracing::warn!(error = %e, session = %session_id, "could not store the reply of an idempotencyKey");
        }
        runs.release_key(&session_id, &key, &reply);
        let _ = tx.send(reply);
    });
    rx
}

pub async fn attach(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: AgentAttachParams,
) -> Result<AgentAttachResult, RpcError> {
    let runs = &gw.lanes.runs;
    let run = match &p.run_id {
        Some(id) => runs
            .get(id)
            .filter(|r| r.session_id() == p.session_id.as_str()),
        None => runs.latest(&p.session_id),
    };
    let Some(run) = run else {
        // A turn the gateway lost (restarted during it, or shut down): its key says so.
        if let Some(run_id) = &p.run_id
            && let Some(record) = gw
                .store
                .idempotency_run(&p.session_id, run_id)
                .await
                .map_err(store_error)?
        {
            let lost = match record
                .outcome
                .as_deref()
                .map(flynn_agent::runs::decode_outcome)
            {
                None => Some(flynn_agent::runs::interrupted(&record.key)),
                Some(Err(e)) if e.code == flynn_protocol::ErrorCode::RequestCancelled.code() => {
                    Some(e)
                }
                Some(_) => None,
            };
            if let Some(e) = lost {
                // Like the turn's own end: an `error` event, then the error reply.
                let reply: flynn_agent::lanes::Reply = Err(e.clone());
                flynn_agent::runs::final_event(&call.events, &reply);
                return Err(e);
            }
        }
        let kept = runs.kept_ids(&p.session_id);
        let kept = if kept.is_empty() {
            "none".to_owned()
        } else {
            kept.join(", ")
        };
        let agent = &gw.config().agent;
        let what = p
            .run_id
            .as_deref()
            .map_or("no turn".to_owned(), |id| format!("turn `{id}`"));
        return Err(RpcError::invalid(
            "params.runId",
            format!(
                "{what} of session `{}` is not running or kept (turns stay attachable agent.run_grace_secs = {} s after they end, while the gateway keeps at most agent.runs_kept_max = {} turns and agent.runs_kept_max_bytes = {} bytes of events, dropping the oldest finished ones first); kept turns of this session: {kept}; sessions.get has the stored history",
                p.session_id.as_str(),
                agent.run_grace_secs,
                agent.runs_kept_max,
                agent.runs_kept_max_bytes,
            ),
        ));
    };
    let answer = run
        .log()
        .attach(call.events.clone(), p.after_seq, false)
        .map_err(flynn_agent::runs::AttachError::into_rpc)?;
    match answer.await {
        Ok(Ok(r)) => Ok(AgentAttachResult {
            content: r.content,
            usage: r.usage,
            session_id: p.session_id.into(),
            run_id: run.run_id().to_string(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RpcError::internal(
            "the turn ended without a reply (the gateway is shutting down?)",
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

impl AgentMethods for Gateway {
    fn agent_send(
        &self,
        call: Call<ConnectionState>,
        params: AgentSendParams,
    ) -> Reply<'_, AgentSendResult> {
        Reply::later(send(self, call, params))
    }
    fn agent_cancel(
        &self,
        call: Call<ConnectionState>,
        params: AgentCancelParams,
    ) -> Reply<'_, AgentCancelResult> {
        Reply::later(cancel(self, call, params))
    }
    fn agent_attach(
        &self,
        call: Call<ConnectionState>,
        params: AgentAttachParams,
    ) -> Reply<'_, AgentAttachResult> {
        Reply::later(attach(self, call, params))
    }
    fn agent_set_tool_use_callback(
        &self,
        call: Call<ConnectionState>,
        params: AgentSetToolUseCallbackParams,
    ) -> Reply<'_, AgentSetToolUseCallbackResult> {
        Reply::ready(set_tool_use_callback(self, call, params))
    }
    fn agent_approve_tool(
        &self,
        call: Call<ConnectionState>,
        params: AgentApproveToolParams,
    ) -> Reply<'_, AgentApproveToolResult> {
        Reply::ready(approve_tool(self, call, params))
    }
}
