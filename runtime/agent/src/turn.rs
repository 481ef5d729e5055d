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

use flynn_models::{ChatMessage, ChatRequest, Provider, ProviderError, StreamEvent, ToolCall};
use flynn_protocol::EmitEvents as _;
use flynn_protocol::ErrorCode;
use flynn_protocol::types::{
    AttachmentEventData, ContentEventData, ToolApprovalEventData, ToolEndEventData, ToolResult,
    ToolStartEventData,
};
use flynn_protocol::wire::RpcError;
use flynn_store::{NewMessage, Role, ToolRun};
use flynn_tools::{ToolContext, ToolError, ToolOutput};
use serde_json::{Map, Value};

use crate::context::{context_warning, store_err};
use crate::deps::{Deps, Settings, now_ms};
use crate::run::{ActiveRun, StopReason, Turn, TurnOutput, UserMessage};

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
    /// The prompt's estimate and message count (see [`crate::prompt::Prompt`]).
    prompt_estimate: (u64, usize),
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
    let (cx, request) = prompt(deps, settings, turn).await?;
    // Kept by the turn and lent to each model call (`Provider::stream_shared`): the provider's
    // task drops its reference before the stream ends, so the pushes below copy nothing.
    let mut request = Arc::new(request);
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

/// The prompt step ([`crate::prompt::build`]), with what the other steps share.
async fn prompt<'a>(
    deps: &'a Deps,
    settings: Arc<Settings>,
    turn: &'a Turn,
) -> Result<(TurnCx<'a>, ChatRequest), Halt> {
    let built = crate::prompt::build(deps, &settings, turn).await?;
    let cx = TurnCx {
        deps,
        settings,
        session_id: &turn.session_id,
        run: &turn.run,
        provider: built.provider,
        may_use_tools: built.may_use_tools,
        prompt_estimate: built.estimate,
    };
    Ok((cx, built.request))
}

/// One model call and the tool calls it asks for. True when the model gave its final answer
/// (no tool calls, nothing steered in meanwhile).
async fn iteration(
    cx: &TurnCx<'_>,
    request: &mut Arc<ChatRequest>,
    totals: &mut Totals,
) -> Result<bool, Halt> {
    let run = cx.run;
    if run.cancel.is_cancelled() {
        return Err(Halt::Stopped);
    }
    push_steered(cx, request, run.take_steered(false)).await?;
    let estimate = estimate(cx, request);
    let (text, calls, usage) = match model_call(cx.provider.as_ref(), request, estimate, run).await
    {
        Ok(v) => v,
        Err(_) if run.cancel.is_cancelled() => return Err(Halt::Stopped),
        Err(e) => return Err(provider_error(&e).into()),
    };
    totals.input_tokens += usage.0;
    totals.output_tokens += usage.1;
    totals.text.push_str(&text);
    if calls.is_empty() {
        let steered = run.take_steered(true);
        Arc::make_mut(request)
            .messages
            .push(ChatMessage::assistant(text, Vec::new()));
        if steered.is_empty() {
            return Ok(true);
        }
        push_steered(cx, request, steered).await?;
        return Ok(false);
    }
    Arc::make_mut(request)
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
    request: &mut Arc<ChatRequest>,
    steered: Vec<UserMessage>,
) -> Result<(), Halt> {
    for message in steered {
        crate::prompt::persist_user(cx.deps, cx.session_id, &message).await?;
        Arc::make_mut(request)
            .messages
            .push(ChatMessage::user(message.text));
    }
    Ok(())
}

/// The request's token estimate: the prompt's plus the messages the turn added (it never
/// removes any), instead of estimating the whole prompt again.
fn estimate(cx: &TurnCx<'_>, request: &ChatRequest) -> u64 {
    let (prompt_tokens, prompt_len) = cx.prompt_estimate;
    let estimated = prompt_tokens
        + request.messages[prompt_len.min(request.messages.len())..]
            .iter()
            .map(flynn_models::estimate_message_tokens)
            .sum::<u64>();
    debug_assert_eq!(estimated, flynn_models::estimate_request_tokens(request));
    estimated
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
    let estimated = estimate(cx, request);
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
                "mode": policy.mode,
                "overflow": policy.overflow,
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

/// What a tool call of a turn gets when its requester may not use tools.
const NO_TOOLS_FOR_REQUESTER: &str =
    "refused: the requester of this turn does not hold the `operator` scope, which tool calls need";

fn provider_error(e: &ProviderError) -> RpcError {
    RpcError::internal(format!("the model provider failed: {e}"))
}

type ModelCall = (String, Vec<ToolCall>, (u64, u64));

/// The model step: streams one model call, forwarding text and attachments as events.
/// `estimate` is the request's token estimate (see [`estimate`]).
async fn model_call(
    provider: &dyn Provider,
    request: &Arc<ChatRequest>,
    estimate: u64,
    run: &ActiveRun,
) -> Result<ModelCall, ProviderError> {
    let mut rx = provider.stream_shared(request.clone(), Some(estimate), run.cancel.child_token());
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut usage = (0, 0);
    while let Some(event) = rx.recv().await {
        match event? {
            StreamEvent::TextDelta(delta) => {
                let data = ContentEventData {
                    text: delta,
                    transient: None,
                };
                run.emit_content(&data);
                text.push_str(&data.text);
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
async fn tool_step(
    cx: &TurnCx<'_>,
    request: &mut Arc<ChatRequest>,
    call: ToolCall,
) -> Result<(), Halt> {
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
    Arc::make_mut(request)
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
