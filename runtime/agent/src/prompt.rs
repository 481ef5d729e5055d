//! The prompt step of a turn: the stored history (after the compaction summary), the note of
//! messages dropped by overflow, the turn's messages (stored as they are added), the tools the
//! requesters may use and the system prompt, trimmed to the model's window.

use std::sync::Arc;

use flynn_models::{ChatMessage, ChatRequest, ImagePart, Provider, ToolSpec};
use flynn_protocol::wire::RpcError;
use flynn_store::{NewMessage, Role, split_session_id};
use serde_json::Value;

use crate::context::{HISTORY_MESSAGES, store_err};
use crate::deps::{Deps, Settings, now_ms};
use crate::run::{Turn, UserMessage};
use crate::session_config::StoredSessionConfig;

/// What the prompt step gives the rest of the turn.
pub(crate) struct Prompt {
    pub(crate) request: ChatRequest,
    /// The session's model tier's provider.
    pub(crate) provider: Arc<dyn Provider>,
    /// Every message the turn answers comes from a requester holding `operator`.
    pub(crate) may_use_tools: bool,
}

/// The prompt: the stored history (after the compaction summary), the dropped-overflow note,
/// the turn's messages (stored as they are added), the tools the requesters may use and the
/// system prompt, trimmed to the model's window.
pub(crate) async fn build(
    deps: &Deps,
    settings: &Settings,
    turn: &Turn,
) -> Result<Prompt, RpcError> {
    let session_id = turn.session_id.as_str();
    deps.store
        .ensure_session(session_id, now_ms())
        .await
        .map_err(store_err)?;
    let record = deps.store.session(session_id).await.map_err(store_err)?;
    let overrides = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    let provider = settings.provider(overrides.model_tier.as_deref());
    let mut messages = history(deps, session_id, &overrides).await?;
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
    let tools = if may_use_tools {
        tool_specs(settings)
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
    Ok(Prompt {
        request,
        provider,
        may_use_tools,
    })
}

/// The stored history the model sees: after the compaction summary, user and assistant
/// messages only.
async fn history(
    deps: &Deps,
    session_id: &str,
    overrides: &StoredSessionConfig,
) -> Result<Vec<ChatMessage>, RpcError> {
    let history = deps
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(store_err)?;
    let compacted_through = overrides
        .compaction
        .as_ref()
        .map_or(i64::MIN, |c| c.through_message_id);
    Ok(history
        .into_iter()
        .filter(|m| m.id > compacted_through)
        .filter_map(|m| match m.role {
            Role::User => Some(ChatMessage::user(m.content)),
            Role::Assistant => Some(ChatMessage::assistant(m.content, Vec::new())),
            // Tool output and system notes are shown in history but not replayed to the model:
            // providers require tool results to follow their own tool calls.
            Role::Tool | Role::System => None,
        })
        .collect())
}

fn tool_specs(settings: &Settings) -> Vec<ToolSpec> {
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

pub(crate) async fn persist_user(
    deps: &Deps,
    session_id: &str,
    message: &UserMessage,
) -> Result<(), RpcError> {
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

/// Share of the model's window the prompt may fill; the rest is left for the answer.
const PROMPT_SHARE: f64 = 0.85;

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
