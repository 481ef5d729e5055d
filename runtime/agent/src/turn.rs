//! One agent turn: history from the store, the model stream as `content` events, tool calls as
//! `tool_start` / `tool_end` (after approval when the session asks for it), results fed back
//! until a final answer, messages and tool runs persisted as they happen, and a
//! `context_warning` when the session's estimated context passes the configured levels
//! ([`crate::context`]).
//!
//! The steps: [`prompt`] (history, the turn's messages, tools, system prompt, trimmed to the
//! window), then per iteration a model step ([`model_call`]) and a tool step per call
//! ([`tool_step`]), then [`persist`] (the answer, the context warning).
//!
//! Cancellation is checked at safe points (before each model call and each tool call) and is
//! also passed down: the model's HTTP stream and tool processes receive the run's token. A stop
//! is the typed [`Halt::Stopped`], turned into the stop's error reply once, at the top.

use std::sync::Arc;
use std::time::Duration;

use flynn_models::{
    ChatMessage, ChatRequest, ImagePart, Provider, ProviderError, StreamEvent, ToolCall, ToolSpec,
};
use flynn_protocol::ErrorCode;
use flynn_protocol::types::{
    AttachmentEventData, ContentEventData, ToolApprovalEventData, ToolEndEventData, ToolResult,
    ToolStartEventData,
};
use flynn_protocol::wire::RpcError;
use flynn_store::{NewMessage, Role, ToolRun, split_session_id};
use flynn_tools::{ToolContext, ToolError, ToolOutput};
use serde_json::{Map, Value};

use crate::context::{HISTORY_MESSAGES, context_warning, store_err};
use crate::deps::{Deps, Settings, now_ms};
use crate::run::{ActiveRun, StopReason, Turn, TurnOutput, UserMessage};
use crate::session_config::{StoredSessionConfig, wire_mode, wire_overflow};

/// Why a turn ended without an answer.
enum Halt {
    /// The run was stopped (cancelled, interrupted, shutdown): see [`stopped`].
    Stopped,
    /// Anything else, with the error its requesters get.
    Failed(RpcError),
}

impl From<RpcError> for Halt {
    fn from(e: RpcError) -> Self {
        Halt::Failed(e)
    }
}

/// What the steps of one turn share.
struct TurnCx<'a> {
    deps: &'a Deps,
    settings: Arc<Settings>,
    session_id: &'a str,
    run: &'a ActiveRun,
    provider: Arc<dyn Provider>,
    /// Every message the turn answers comes from a requester holding `operator`.
    may_use_tools: bool,
}

/// What the turn has produced so far.
#[derive(Default)]
struct Totals {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

/// Runs one turn to its end.
pub async fn run_turn(deps: &Deps, turn: Turn) -> Result<TurnOutput, RpcError> {
    let run = turn.run.clone();
    let session_id = turn.session_id.clone();
    match run_steps(deps, &turn).await {
        Ok(output) => Ok(output),
        Err(Halt::Failed(e)) => Err(e),
        Err(Halt::Stopped) => Err(stopped(deps, &session_id, &run).await),
    }
}

async fn run_steps(deps: &Deps, turn: &Turn) -> Result<TurnOutput, Halt> {
    let settings = deps.settings();
    let (cx, mut request) = prompt(deps, settings, turn).await?;
    let mut totals = Totals::default();
    let mut finished = false;
    for _ in 0..cx.settings.agent.max_iterations.max(1) {
        if iteration(&cx, &mut request, &mut totals).await? {
            finished = true;
            break;
        }
    }
    persist(&cx, &request, totals, finished).await
}

/// The prompt: the stored history (after the compaction summary), the dropped-overflow note,
/// the turn's messages (stored as they are added), the tools the requesters may use and the
/// system prompt, trimmed to the model's window.
async fn prompt<'a>(
    deps: &'a Deps,
    settings: Arc<Settings>,
    turn: &'a Turn,
) -> Result<(TurnCx<'a>, ChatRequest), Halt> {
    let session_id = turn.session_id.as_str();
    deps.store
        .ensure_session(session_id, now_ms())
        .await
        .map_err(store_err)?;
    let record = deps.store.session(session_id).await.map_err(store_err)?;
    let overrides = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    let provider = settings.provider(overrides.model_tier.as_deref());
    let history = deps
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(store_err)?;
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
    for message in &turn.messages {
        persist_user(deps, session_id, message).await?;
        messages.push(ChatMessage {
            images: images(message, provider.accepts_images()),
            ..ChatMessage::user(message.text.clone())
        });
    }
    // Tools only for requesters holding `operator` (decision scopes): a chat-only token must
    // not reach a shell through the model.
    let may_use_tools = turn_may_use_tools(&turn.messages);
    let tools: Vec<ToolSpec> = if may_use_tools {
        settings
            .tools
            .list()
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                input_schema: t.input_schema,
            })
            .collect()
    } else {
        Vec::new()
    };
    let system_prompt = &settings.agent.system_prompt;
    let mut request = ChatRequest {
        model: provider.model().to_owned(),
        system: Some(match &overrides.compaction {
            Some(c) => format!(
                "{system_prompt}\n\nSummary of the earlier conversation:\n{}",
                c.summary
            ),
            None => system_prompt.clone(),
        }),
        messages,
        tools,
        max_output_tokens: None,
    };
    trim_to_window(&mut request, history_len, provider.context_window());
    let cx = TurnCx {
        deps,
        settings,
        session_id,
        run: &turn.run,
        provider,
        may_use_tools,
    };
    Ok((cx, request))
}

/// One model call and the tool calls it asks for. True when the model gave its final answer
/// (no tool calls, nothing steered in meanwhile).
async fn iteration(
    cx: &TurnCx<'_>,
    request: &mut ChatRequest,
    totals: &mut Totals,
) -> Result<bool, Halt> {
    let run = cx.run;
    if run.cancel.is_cancelled() {
        return Err(Halt::Stopped);
    }
    push_steered(cx, request, run.take_steered(false)).await?;
    let (text, calls, usage) = match model_call(cx.provider.as_ref(), request, run).await {
        Ok(v) => v,
        Err(_) if run.cancel.is_cancelled() => return Err(Halt::Stopped),
        Err(e) => return Err(provider_error(&e).into()),
    };
    totals.input_tokens += usage.0;
    totals.output_tokens += usage.1;
    totals.text.push_str(&text);
    if calls.is_empty() {
        let steered = run.take_steered(true);
        request
            .messages
            .push(ChatMessage::assistant(text, Vec::new()));
        if steered.is_empty() {
            return Ok(true);
        }
        push_steered(cx, request, steered).await?;
        return Ok(false);
    }
    request
        .messages
        .push(ChatMessage::assistant(text, calls.clone()));
    for call in calls {
        tool_step(cx, request, call).await?;
    }
    Ok(false)
}

/// Stores messages steered into the run and adds them to the prompt.
async fn push_steered(
    cx: &TurnCx<'_>,
    request: &mut ChatRequest,
    steered: Vec<UserMessage>,
) -> Result<(), Halt> {
    for message in steered {
        persist_user(cx.deps, cx.session_id, &message).await?;
        request.messages.push(ChatMessage::user(message.text));
    }
    Ok(())
}

/// The turn's end: the iteration-limit note when the model never finished, the answer stored,
/// and the `context_warning` when the session's context passed the configured levels.
async fn persist(
    cx: &TurnCx<'_>,
    request: &ChatRequest,
    mut totals: Totals,
    finished: bool,
) -> Result<TurnOutput, Halt> {
    if !finished {
        let note = format!(
            "\n\n(Stopped after {} model calls: agent.max_iterations.)",
            cx.settings.agent.max_iterations
        );
        cx.run.emit(|e| {
            e.content(&ContentEventData {
                text: note.clone(),
                transient: None,
            })
        });
        totals.text.push_str(&note);
    }
    cx.deps
        .store
        .append_message(NewMessage {
            session_id: cx.session_id.to_owned(),
            role: Role::Assistant,
            content: totals.text.clone(),
            attachments: None,
            created_at_ms: now_ms(),
        })
        .await
        .map_err(store_err)?;
    let estimated = flynn_models::estimate_request_tokens(request);
    if let Some(warning) = context_warning(
        cx.deps,
        cx.session_id,
        estimated,
        cx.provider.as_ref(),
        cx.run,
    )
    .await
    {
        cx.run.emit(|e| e.context_warning(&warning));
    }
    Ok(TurnOutput {
        content: totals.text,
        input_tokens: totals.input_tokens,
        output_tokens: totals.output_tokens,
    })
}

/// The error a stopped run ends with.
async fn stopped(deps: &Deps, session_id: &str, run: &ActiveRun) -> RpcError {
    match run.stop_reason() {
        Some(StopReason::Interrupted) => {
            let policy = deps.queue_policy(session_id).await.unwrap_or_default();
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

async fn persist_user(deps: &Deps, session_id: &str, message: &UserMessage) -> Result<(), Halt> {
    let now = now_ms();
    let attachments = (!message.attachments.is_empty())
        .then(|| {
            // Keep what the message carried, minus the payload: history shows that a file came.
            let meta: Vec<Value> = message
                .attachments
                .iter()
                .map(|a| serde_json::json!({ "mimeType": a.mime_type, "filename": a.filename, "bytes": a.data.len() * 3 / 4 }))
                .collect();
            Value::Array(meta).to_string()
        });
    deps.store
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
    if let Err(e) = deps
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

/// Share of the model's window the prompt may fill; the rest is left for the answer.
const PROMPT_SHARE: f64 = 0.85;

/// What a tool call of a turn gets when its requester may not use tools.
const NO_TOOLS_FOR_REQUESTER: &str =
    "refused: the requester of this turn does not hold the `operator` scope, which tool calls need";

/// Whether a turn may call tools: every message it answers comes from a requester holding the
/// `operator` scope.
pub fn turn_may_use_tools(messages: &[UserMessage]) -> bool {
    messages.iter().all(|m| m.may_use_tools)
}

/// Drops the oldest history messages (never the current turn's) until the prompt's estimate
/// fits the model's window. The full history stays in the store; the `context_warning`
/// checkpoint keeps what the model no longer sees.
///
/// Linear in the history: the request is estimated once and each dropped message's own
/// estimate subtracted, and the dropped messages leave in one `drain`.
fn trim_to_window(request: &mut ChatRequest, history_len: usize, window: u64) {
    let budget = (window as f64 * PROMPT_SHARE) as u64;
    let mut estimate = flynn_models::estimate_request_tokens(request);
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

type ModelCall = (String, Vec<ToolCall>, (u64, u64));

/// The model step: streams one model call, forwarding text and attachments as events.
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

/// The tool step of one call: refused, skipped, approved or not, run; then its `tool_end`,
/// its stored run and its result in the prompt.
async fn tool_step(cx: &TurnCx<'_>, request: &mut ChatRequest, call: ToolCall) -> Result<(), Halt> {
    let run = cx.run;
    if run.cancel.is_cancelled() {
        return Err(Halt::Stopped);
    }
    let output = if run.has_steered() {
        ToolOutput::failure("skipped: the user sent a new message before this tool started")
    } else if !cx.may_use_tools {
        ToolOutput::failure(NO_TOOLS_FOR_REQUESTER)
    } else if cx.deps.approvals.is_enabled(cx.session_id) {
        let args = to_object(&call.arguments);
        match ask_approval(cx, &call.name, &args).await {
            Approval::Granted => execute_tool(cx, &call.name, &call.arguments).await?,
            Approval::Refused(reason) => ToolOutput::failure(format!(
                "skipped: the user refused this tool call{}",
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            Approval::TimedOut => ToolOutput::failure("skipped: no approval arrived in time"),
            Approval::Cancelled => return Err(Halt::Stopped),
        }
    } else {
        execute_tool(cx, &call.name, &call.arguments).await?
    };
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
        session_id: cx.session_id.to_owned(),
        tool: call.name.clone(),
        args: call.arguments.to_string(),
        result: serde_json::json!({ "success": output.success, "output": output.output, "error": output.error }).to_string(),
        success: output.success,
        started_at_ms: started,
        finished_at_ms: now_ms(),
    };
    if let Err(e) = cx.deps.store.record_tool_run(record).await {
        tracing::warn!(error = %e, "could not record a tool run");
    }
    request
        .messages
        .push(ChatMessage::tool_result(call.id, output.model_text()));
    Ok(())
}

/// Runs a tool. A call cancelled because the run was stopped stops the turn.
async fn execute_tool(cx: &TurnCx<'_>, name: &str, args: &Value) -> Result<ToolOutput, Halt> {
    let run = cx.run;
    run.emit(|e| {
        e.tool_start(&ToolStartEventData {
            tool: name.to_owned(),
            args: to_object(args),
        })
    });
    // The current settings: a reload's registry keeps counting the calls still running.
    let settings = cx.deps.settings();
    let tool_cx = ToolContext::new(
        settings.workspace.clone(),
        cx.session_id,
        run.cancel.child_token(),
    );
    let hooks = &cx.deps.hooks;
    match settings.tools.execute(name, args.clone(), tool_cx).await {
        Ok(output) => {
            let outcome = if output.success { "ok" } else { "failed" };
            hooks.tool_ran(name, true, outcome);
            Ok(output)
        }
        Err(e) => {
            let known = !matches!(e, ToolError::NotFound { .. });
            hooks.tool_ran(name, known, "error");
            if matches!(e, ToolError::Cancelled { .. }) && run.cancel.is_cancelled() {
                return Err(Halt::Stopped);
            }
            Ok(ToolOutput::from_error(&e))
        }
    }
}

enum Approval {
    Granted,
    Refused(Option<String>),
    TimedOut,
    Cancelled,
}

async fn ask_approval(cx: &TurnCx<'_>, tool: &str, args: &Map<String, Value>) -> Approval {
    let (run, session_id) = (cx.run, cx.session_id);
    let timeout_ms = cx.settings.agent.approval_timeout_ms;
    let approvals = &cx.deps.approvals;
    let (approval_id, answer) = approvals.open(session_id);
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
    approvals.close(&approval_id);
    outcome
}
