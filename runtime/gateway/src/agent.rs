//! One agent turn: history from the store, the model stream as `content` events, tool calls as
//! `tool_start` / `tool_end` (after approval when the session asks for it), results fed back
//! until a final answer, messages and tool runs persisted as they happen, and a
//! `context_warning` when the session's estimated context passes the configured levels.
//!
//! Cancellation is checked at safe points (before each model call and each tool call) and is
//! also passed down: the model's HTTP stream and tool processes receive the run's token.

use std::sync::Arc;
use std::time::Duration;

use flynn_models::{
    ChatMessage, ChatRequest, ImagePart, Provider, ProviderError, StreamEvent, ToolSpec,
};
use flynn_protocol::ErrorCode;
use flynn_protocol::types::{
    AttachmentEventData, ContentEventData, ContextBudget, ContextWarningActions,
    ContextWarningEventData, ToolApprovalEventData, ToolEndEventData, ToolResult,
    ToolStartEventData,
};
use flynn_protocol::wire::RpcError;
use flynn_store::{NewMessage, Role, ToolRun, split_session_id};
use flynn_tools::{ToolContext, ToolOutput};
use serde_json::{Map, Value};

use crate::gateway::{Gateway, now_ms};
use crate::lanes::{ActiveRun, StopReason, Turn, TurnOutput, UserMessage};
use crate::session_config::{StoredSessionConfig, wire_mode, wire_overflow};

/// Messages of history sent to the model.
const HISTORY_MESSAGES: u32 = 200;

fn store_err(e: flynn_store::StoreError) -> RpcError {
    RpcError::internal(format!("storage failed during the run: {e}"))
}

/// The error a stopped run ends with.
async fn stopped(gw: &Gateway, session_id: &str, run: &ActiveRun) -> RpcError {
    match run.stop_reason() {
        Some(StopReason::Interrupted) => {
            let policy = gw.queue_policy(session_id).await.unwrap_or_default();
            RpcError::new(
                ErrorCode::AgentBusy,
                "interrupted by a newer message (queue mode interrupt)",
            )
            .with_data(serde_json::json!({ "queue": {
                "code": "superseded",
                "laneId": session_id,
                "mode": wire_mode(policy.mode),
                "overflow": wire_overflow(policy.overflow),
                "droppedCount": run.interrupt_dropped(),
            }}))
        }
        Some(StopReason::Shutdown) => RpcError::new(
            ErrorCode::RequestCancelled,
            "cancelled: the gateway is shutting down; send it again once it is back",
        ),
        _ => RpcError::new(
            ErrorCode::RequestCancelled,
            ErrorCode::RequestCancelled.default_message(),
        ),
    }
}

fn images(message: &UserMessage, accepts_images: bool) -> Vec<ImagePart> {
    if !accepts_images {
        return Vec::new();
    }
    message
        .attachments
        .iter()
        .filter(|a| a.mime_type.starts_with("image/"))
        .map(|a| ImagePart {
            mime_type: a.mime_type.clone(),
            data_base64: a.data.clone(),
        })
        .collect()
}

/// What the store keeps of a message's attachments: what it carried, minus the payload
/// (history shows that a file came).
fn attachments_meta(message: &UserMessage) -> Option<String> {
    (!message.attachments.is_empty()).then(|| {
        let meta: Vec<Value> = message
            .attachments
            .iter()
            .map(|a| serde_json::json!({ "mimeType": a.mime_type, "filename": a.filename, "bytes": a.data.len() * 3 / 4 }))
            .collect();
        Value::Array(meta).to_string()
    })
}

/// The store work of a turn's start in one job and one transaction (`Store::begin_turn`): the
/// session created if missing, its record and history read, the turn's messages stored with
/// their senders' presence. Returns the session's record and its history before the turn.
async fn begin_turn(
    gw: &Gateway,
    session_id: &str,
    messages: &[UserMessage],
) -> Result<
    (
        Option<flynn_store::SessionRecord>,
        Vec<flynn_store::HistoryMessage>,
    ),
    RpcError,
> {
    let now = now_ms();
    let (frontend, user_id) = split_session_id(session_id);
    let messages = messages
        .iter()
        .map(|m| flynn_store::TurnMessage {
            content: m.text.clone(),
            attachments: attachments_meta(m),
            created_at_ms: now,
            presence: Some(flynn_store::PresenceUpdate {
                channel: frontend.to_owned(),
                sender_id: m.presence_sender.as_deref().unwrap_or(user_id).to_owned(),
                sender_name: m.sender_name.clone(),
            }),
        })
        .collect();
    let context = gw
        .store
        .begin_turn(flynn_store::TurnStart {
            session_id: session_id.to_owned(),
            now_ms: now,
            history_limit: HISTORY_MESSAGES,
            messages,
        })
        .await
        .map_err(store_err)?;
    Ok((context.session, context.history))
}

async fn persist_user(
    gw: &Gateway,
    session_id: &str,
    message: &UserMessage,
) -> Result<(), RpcError> {
    let now = now_ms();
    let attachments = attachments_meta(message);
    gw.store
        .append_message(NewMessage {
            session_id: session_id.to_owned(),
            role: Role::User,
            content: message.text.clone(),
            attachments,
            created_at_ms: now,
        })
        .await
        .map_err(store_err)?;
    let (frontend, user_id) = split_session_id(session_id);
    let user_id = message.presence_sender.as_deref().unwrap_or(user_id);
    if let Err(e) = gw
        .store
        .record_presence(frontend, user_id, message.sender_name.as_deref(), now)
        .await
    {
        tracing::warn!(error = %e, "could not record presence");
    }
    Ok(())
}

fn to_object(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("value".to_owned(), other.clone());
            m
        }
    }
}

/// Runs one turn to its end.
pub async fn run_turn(gw: &Arc<Gateway>, turn: Turn) -> Result<TurnOutput, RpcError> {
    let config = gw.config();
    let session_id = turn.session_id.clone();
    let run = turn.run.clone();
    let (record, history) = begin_turn(gw, &session_id, &turn.messages).await?;
    let overrides = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    let provider = gw.provider(overrides.model_tier.as_deref());

    let compacted_through = overrides
        .compaction
        .as_ref()
        .map_or(i64::MIN, |c| c.through_message_id);
    let mut messages: Vec<ChatMessage> = history
        .into_iter()
        .filter(|m| m.id > compacted_through)
        .filter_map(|m| match m.role {
            Role::User => Some(ChatMessage::user(m.content)),
            Role::Assistant => Some(ChatMessage::assistant(m.content, Vec::new())),
            // Tool output and system notes are shown in history but not replayed to the model:
            // providers require tool results to follow their own tool calls.
            Role::Tool | Role::System => None,
        })
        .collect();
    let history_len = messages.len();
    if !turn.overflow_summaries.is_empty() {
        messages.push(ChatMessage::user(format!(
            "(While you were busy, these messages were dropped because the queue was full:\n- {})",
            turn.overflow_summaries.join("\n- ")
        )));
    }
    // Stored by `begin_turn`.
    for message in &turn.messages {
        messages.push(ChatMessage {
            images: images(message, provider.accepts_images()),
            ..ChatMessage::user(message.text.clone())
        });
    }
    // Tools only for requesters holding `operator` (decision scopes): a chat-only token must
    // not reach a shell through the model.
    let may_use_tools = turn_may_use_tools(&turn.messages);
    let (tools, tools_tokens) = if may_use_tools {
        offered_tools(gw)
    } else {
        (Arc::from([]), 0)
    };
    let mut request = ChatRequest {
        model: provider.model().to_owned(),
        system: Some(match &overrides.compaction {
            Some(c) => format!(
                "{}\n\nSummary of the earlier conversation:\n{}",
                config.agent.system_prompt, c.summary
            ),
            None => config.agent.system_prompt.clone(),
        }),
        messages,
        tools,
        max_output_tokens: None,
    };
    trim_to_window(
        &mut request,
        history_len,
        provider.context_window(),
        tools_tokens,
    );

    let mut all_text = String::new();
    let (mut input_tokens, mut output_tokens) = (0u64, 0u64);
    let mut finished = false;
    for _ in 0..config.agent.max_iterations.max(1) {
        if run.cancel.is_cancelled() {
            return Err(stopped(gw, &session_id, &run).await);
        }
        for steered in run.take_steered(false) {
            persist_user(gw, &session_id, &steered).await?;
            request
                .messages
                .push(ChatMessage::user(steered.text.clone()));
        }
        let call = model_call(provider.as_ref(), &request, &run).await;
        let (text, calls, usage) = match call {
            Ok(v) => v,
            Err(_) if run.cancel.is_cancelled() => return Err(stopped(gw, &session_id, &run).await),
            Err(e) => return Err(provider_error(&e)),
        };
        input_tokens += usage.0;
        output_tokens += usage.1;
        all_text.push_str(&text);
        if calls.is_empty() {
            let steered = run.take_steered(true);
            if steered.is_empty() {
                finished = true;
                request
                    .messages
                    .push(ChatMessage::assistant(text, Vec::new()));
                break;
            }
            request
                .messages
                .push(ChatMessage::assistant(text, Vec::new()));
            for s in steered {
                persist_user(gw, &session_id, &s).await?;
                request.messages.push(ChatMessage::user(s.text.clone()));
            }
            continue;
        }
        request
            .messages
            .push(ChatMessage::assistant(text, calls.clone()));
        for call in calls {
            if run.cancel.is_cancelled() {
                return Err(stopped(gw, &session_id, &run).await);
            }
            let args = to_object(&call.arguments);
            let output = if run.has_steered() {
                ToolOutput::failure("skipped: the user sent a new message before this tool started")
            } else if !may_use_tools {
                ToolOutput::failure(NO_TOOLS_FOR_REQUESTER)
            } else if gw.approvals.is_enabled(&session_id) {
                match ask_approval(
                    gw,
                    &session_id,
                    &run,
                    &call.name,
                    &args,
                    config.agent.approval_timeout_ms,
                )
                .await
                {
                    Approval::Granted => {
                        execute_tool(gw, &session_id, &run, &call.name, &call.arguments).await
                    }
                    Approval::Refused(reason) => ToolOutput::failure(format!(
                        "skipped: the user refused this tool call{}",
                        reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    )),
                    Approval::TimedOut => {
                        ToolOutput::failure("skipped: no approval arrived in time")
                    }
                    Approval::Cancelled => return Err(stopped(gw, &session_id, &run).await),
                }
            } else {
                execute_tool(gw, &session_id, &run, &call.name, &call.arguments).await
            };
            if run.cancel.is_cancelled()
                && output
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("cancel"))
            {
                return Err(stopped(gw, &session_id, &run).await);
            }
            run.emit(|e| {
                e.tool_end(&ToolEndEventData {
                    tool: call.name.clone(),
                    result: ToolResult {
                        success: output.success,
                        output: output.output.clone(),
                        error: output.error.clone(),
                    },
                })
            });
            let started = now_ms();
            let record = ToolRun {
                session_id: session_id.clone(),
                tool: call.name.clone(),
                args: call.arguments.to_string(),
                result: serde_json::json!({ "success": output.success, "output": output.output, "error": output.error }).to_string(),
                success: output.success,
                started_at_ms: started,
                finished_at_ms: now_ms(),
            };
            if let Err(e) = gw.store.record_tool_run(record).await {
                tracing::warn!(error = %e, "could not record a tool run");
            }
            request.messages.push(ChatMessage::tool_result(
                call.id.clone(),
                output.model_text(),
            ));
        }
    }
    if !finished {
        let note = format!(
            "\n\n(Stopped after {} model calls: agent.max_iterations.)",
            config.agent.max_iterations
        );
        run.emit(|e| {
            e.content(&ContentEventData {
                text: note.clone(),
                transient: None,
            })
        });
        all_text.push_str(&note);
    }
    gw.store
        .append_message(NewMessage {
            session_id: session_id.clone(),
            role: Role::Assistant,
            content: all_text.clone(),
            attachments: None,
            created_at_ms: now_ms(),
        })
        .await
        .map_err(store_err)?;

    let estimated = flynn_models::estimate_request_tokens_with_tools(&request, tools_tokens);
    if let Some(warning) =
        context_warning(gw, &session_id, estimated, provider.as_ref(), &run).await
    {
        run.emit(|e| e.context_warning(&warning));
    }
    Ok(TurnOutput {
        content: all_text,
        input_tokens,
        output_tokens,
    })
}

/// The tools offered to the model and their token estimate, made once per tool registry (it
/// is replaced on a configuration reload) instead of on every turn: deriving, copying and
/// estimating the tools' JSON Schemas was a fifth of a short turn's CPU.
fn offered_tools(gw: &Gateway) -> (Arc<[ToolSpec]>, u64) {
    type Offered = (Arc<[flynn_tools::ToolDescriptor]>, Arc<[ToolSpec]>, u64);
    static LAST: std::sync::Mutex<Option<Offered>> = std::sync::Mutex::new(None);
    let descriptors = gw.tools().descriptors();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((made_from, specs, tokens)) = last.as_ref()
        && Arc::ptr_eq(made_from, &descriptors)
    {
        return (specs.clone(), *tokens);
    }
    let specs: Arc<[ToolSpec]> = descriptors
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: t.input_schema.clone(),
        })
        .collect();
    let tokens = flynn_models::estimate_tools_tokens(&specs);
    *last = Some((descriptors, specs.clone(), tokens));
    (specs, tokens)
}

/// Share of the model's window the prompt may fill; the rest is left for the answer.
const PROMPT_SHARE: f64 = 0.85;

/// Drops the oldest history messages (never the current turn's) until the prompt's estimate
/// fits the model's window. The full history stays in the store; the `context_warning`
/// checkpoint keeps what the model no longer sees.
/// What a tool call of a turn gets when its requester may not use tools.
const NO_TOOLS_FOR_REQUESTER: &str =
    "refused: the requester of this turn does not hold the `operator` scope, which tool calls need";

/// Whether a turn may call tools: every message it answers comes from a requester holding the
/// `operator` scope.
pub fn turn_may_use_tools(messages: &[UserMessage]) -> bool {
    messages.iter().all(|m| m.may_use_tools)
}

/// Linear in the history: the request is estimated once and each dropped message's own
/// estimate subtracted, and the dropped messages leave in one `drain`.
fn trim_to_window(request: &mut ChatRequest, history_len: usize, window: u64, tools_tokens: u64) {
    let budget = (window as f64 * PROMPT_SHARE) as u64;
    let mut estimate = flynn_models::estimate_request_tokens_with_tools(request, tools_tokens);
    let mut dropped = 0;
    while dropped < history_len && estimate > budget {
        estimate = estimate.saturating_sub(flynn_models::estimate_message_tokens(
            &request.messages[dropped],
        ));
        dropped += 1;
    }
    // A conversation must start with a user message for some APIs.
    while dropped < history_len && request.messages[dropped].role != flynn_models::Role::User {
        dropped += 1;
    }
    request.messages.drain(..dropped);
    if dropped > 0 {
        tracing::debug!(
            dropped,
            "older history left out of the prompt to fit the context window"
        );
    }
}

fn provider_error(e: &ProviderError) -> RpcError {
    RpcError::internal(format!("the model provider failed: {e}"))
}

type ModelCall = (String, Vec<flynn_models::ToolCall>, (u64, u64));

/// Streams one model call, forwarding text and attachments as events.
async fn model_call(
    provider: &dyn Provider,
    request: &ChatRequest,
    run: &ActiveRun,
) -> Result<ModelCall, ProviderError> {
    let mut rx = provider.stream(request.clone(), run.cancel.child_token());
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut usage = (0, 0);
    while let Some(event) = rx.recv().await {
        match event? {
            StreamEvent::TextDelta(delta) => {
                run.emit(|e| {
                    e.content(&ContentEventData {
                        text: delta.clone(),
                        transient: None,
                    })
                });
                text.push_str(&delta);
            }
            StreamEvent::ToolCall(call) => calls.push(call),
            StreamEvent::Attachment {
                mime_type,
                data_base64,
                filename,
            } => run.emit(|e| {
                e.attachment(&AttachmentEventData {
                    mime_type: mime_type.clone(),
                    data: data_base64.clone(),
                    filename: filename.clone(),
                })
            }),
            StreamEvent::Usage {
                input_tokens,
                output_tokens,
            } => usage = (input_tokens, output_tokens),
            StreamEvent::Finished { .. } => {}
        }
    }
    if run.cancel.is_cancelled() {
        return Err(ProviderError::Cancelled);
    }
    Ok((text, calls, usage))
}

async fn execute_tool(
    gw: &Gateway,
    session_id: &str,
    run: &ActiveRun,
    name: &str,
    args: &Value,
) -> ToolOutput {
    run.emit(|e| {
        e.tool_start(&ToolStartEventData {
            tool: name.to_owned(),
            args: to_object(args),
        })
    });
    let cx = ToolContext::new(gw.workspace(), session_id, run.cancel.child_token());
    let metrics = crate::metrics::get();
    match gw.tools().execute(name, args.clone(), cx).await {
        Ok(output) => {
            let outcome = if output.success { "ok" } else { "failed" };
            metrics.tool_run(name, true, outcome);
            output
        }
        Err(e) => {
            let known = !matches!(e, flynn_tools::ToolError::NotFound { .. });
            metrics.tool_run(name, known, "error");
            ToolOutput::from_error(&e)
        }
    }
}

enum Approval {
    Granted,
    Refused(Option<String>),
    TimedOut,
    Cancelled,
}

async fn ask_approval(
    gw: &Gateway,
    session_id: &str,
    run: &ActiveRun,
    tool: &str,
    args: &Map<String, Value>,
    timeout_ms: u64,
) -> Approval {
    let (approval_id, answer) = gw.approvals.open(session_id);
    run.emit(|e| {
        e.tool_approval(&ToolApprovalEventData {
            approval_id: approval_id.clone(),
            session_id: session_id.to_owned(),
            tool: tool.to_owned(),
            args: args.clone(),
            timeout_ms: std::num::NonZeroU64::new(timeout_ms.max(1))
                .unwrap_or(std::num::NonZeroU64::MIN),
        })
    });
    let outcome = tokio::select! {
        _ = run.cancel.cancelled() => Approval::Cancelled,
        answer = tokio::time::timeout(Duration::from_millis(timeout_ms), answer) => match answer {
            Ok(Ok((true, _))) => Approval::Granted,
            Ok(Ok((false, reason))) => Approval::Refused(reason),
            Ok(Err(_)) | Err(_) => Approval::TimedOut,
        },
    };
    gw.approvals.close(&approval_id);
    outcome
}

/// The session's estimated budget against `window`.
pub fn budget(estimated: u64, window: u64, threshold_pct: f64) -> ContextBudget {
    let window = window.max(1);
    let usage_pct = ((estimated as f64 / window as f64) * 1000.0).round() / 10.0;
    let threshold_tokens = (window as f64 * threshold_pct / 100.0).round() as u64;
    ContextBudget {
        estimated_tokens: estimated,
        context_window: window,
        remaining_tokens: window.saturating_sub(estimated),
        usage_pct,
        threshold_pct,
        threshold_tokens,
        should_compact: estimated >= threshold_tokens,
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The checkpoint namespace of a session: `session/checkpoints/<frontend>/<id>`.
pub fn checkpoint_namespace(session_id: &str) -> String {
    let (frontend, user) = split_session_id(session_id);
    format!("session/checkpoints/{frontend}/{user}")
}

async fn context_warning(
    gw: &Gateway,
    session_id: &str,
    estimated: u64,
    provider: &dyn Provider,
    run: &ActiveRun,
) -> Option<ContextWarningEventData> {
    let window = provider.context_window();
    let config = gw.config();
    let b = budget(estimated, window, config.agent.threshold_pct);
    if b.usage_pct < config.agent.warning_pct {
        return None;
    }
    let mut actions = ContextWarningActions {
        checkpoint_saved: false,
        auto_compacted: false,
        checkpoint_namespace: None,
    };
    let base = format!(
        "Context usage is {:.1}% ({}/{} estimated tokens).",
        b.usage_pct,
        thousands(b.estimated_tokens),
        thousands(b.context_window)
    );
    if !b.should_compact {
        return Some(ContextWarningEventData {
            level: "warning".to_owned(),
            message: base,
            budget: b,
            actions,
        });
    }
    let namespace = checkpoint_namespace(session_id);
    let history = gw
        .store
        .history(session_id, Some(50))
        .await
        .unwrap_or_default();
    let checkpoint: String = history
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m.role.as_str(),
                m.content.chars().take(500).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    match gw.store.save_memory(&namespace, checkpoint, now_ms()).await {
        Ok(()) => {
            actions.checkpoint_saved = true;
            actions.checkpoint_namespace = Some(namespace.clone());
        }
        Err(e) => tracing::warn!(error = %e, "could not save the context checkpoint"),
    }
    let message = if actions.checkpoint_saved {
        format!("{base} Checkpoint saved to memory namespace `{namespace}`.")
    } else {
        format!("{base} Saving the checkpoint failed; see the gateway log.")
    };
    if config.agent.auto_compact {
        match compact(gw, session_id, provider, run).await {
            Ok(after) => {
                actions.auto_compacted = true;
                let after = budget(after, window, config.agent.threshold_pct);
                let saved = if actions.checkpoint_saved {
                    format!(" Checkpoint saved to memory namespace `{namespace}`.")
                } else {
                    String::new()
                };
                return Some(ContextWarningEventData {
                    level: "compacted".to_owned(),
                    message: format!(
                        "Context usage reached {:.1}%; older history was compacted and usage is now {:.1}%.{saved}",
                        b.usage_pct, after.usage_pct
                    ),
                    budget: after,
                    actions,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, session = session_id, "auto-compaction failed; history left as it was")
            }
        }
    }
    Some(ContextWarningEventData {
        level: "checkpoint".to_owned(),
        message,
        budget: b,
        actions,
    })
}

/// Replaces the session's older history by a model-written summary kept in the session's
/// config (the messages themselves stay in the store). Returns the new estimate.
async fn compact(
    gw: &Gateway,
    session_id: &str,
    provider: &dyn Provider,
    run: &ActiveRun,
) -> Result<u64, String> {
    let history = gw
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(|e| e.to_string())?;
    // Keep the last exchange verbatim; summarize everything before it.
    let keep = 2.min(history.len());
    let (older, recent) = history.split_at(history.len() - keep);
    let Some(last_older) = older.last() else {
        return Err("nothing old enough to compact".to_owned());
    };
    let transcript: String = older
        .iter()
        .map(|m| format!("{}: {}", m.role.as_str(), m.content))
        .collect::<Vec<_>>()
        .join("\n");
    // About half the window, at four characters a token.
    let max_chars = usize::try_from(provider.context_window())
        .unwrap_or(usize::MAX)
        .saturating_mul(2);
    let mut start = transcript.len().saturating_sub(max_chars);
    while !transcript.is_char_boundary(start) {
        start += 1;
    }
    let request = ChatRequest {
        model: provider.model().to_owned(),
        system: Some("Summarize this conversation in at most 200 words, keeping facts, decisions and open tasks.".to_owned()),
        messages: vec![ChatMessage::user(transcript[start..].to_owned())],
        tools: Arc::from([]),
        max_output_tokens: Some(400),
    };
    let response = flynn_models::collect(provider.stream(request, run.cancel.child_token()))
        .await
        .map_err(|e| e.to_string())?;
    let record = gw
        .store
        .session(session_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut stored = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    stored.compaction = Some(crate::session_config::Compaction {
        through_message_id: last_older.id,
        summary: response.text.clone(),
    });
    gw.store
        .set_session_config(session_id, stored.to_json())
        .await
        .map_err(|e| e.to_string())?;
    let config = gw.config();
    Ok(flynn_models::estimate_tokens(&config.agent.system_prompt)
        + flynn_models::estimate_tokens(&response.text)
        + recent
            .iter()
            .map(|m| flynn_models::estimate_tokens(&m.content))
            .sum::<u64>())
}

/// The estimated budget of a stored session (for `system.contextUsage`).
pub async fn session_budget(
    gw: &Gateway,
    session_id: &str,
    stored_config: Option<&str>,
) -> Result<ContextBudget, RpcError> {
    let overrides = StoredSessionConfig::parse(stored_config);
    let provider = gw.provider(overrides.model_tier.as_deref());
    let history = gw
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(store_err)?;
    let config = gw.config();
    let estimated = flynn_models::estimate_tokens(&config.agent.system_prompt)
        + history
            .iter()
            .map(|m| flynn_models::estimate_tokens(&m.content))
            .sum::<u64>();
    Ok(budget(
        estimated,
        provider.context_window(),
        config.agent.threshold_pct,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_matches_the_protocol_document() {
        let b = budget(172_000, 200_000, 80.0);
        assert_eq!(b.usage_pct, 86.0);
        assert_eq!(b.remaining_tokens, 28_000);
        assert_eq!(b.threshold_tokens, 160_000);
        assert!(b.should_compact);
        assert!(!budget(152_000, 200_000, 80.0).should_compact);
        assert_eq!(thousands(172000), "172,000");
        assert_eq!(
            checkpoint_namespace("ws:abc-123"),
            "session/checkpoints/ws/abc-123"
        );
    }
}
