//! The prompt step of a turn: the stored history (after the compaction summary), the note of
//! messages dropped by overflow, the turn's messages (stored as they are added), the tools the
//! requesters may use and the system prompt, trimmed to the model's window.

use std::sync::{Arc, Mutex};

use flynn_models::{ChatMessage, ChatRequest, ImagePart, Provider, ToolSpec};
use flynn_protocol::wire::RpcError;
use flynn_store::{
    HistoryMessage, NewMessage, PresenceUpdate, Role, SessionRecord, TurnMessage, TurnStart,
    split_session_id,
};
use flynn_tools::ToolDescriptor;
use serde_json::Value;

use crate::context::{HISTORY_MESSAGES, store_err};
use crate::deps::{Deps, Settings, now_ms};
use crate::run::{Turn, UserMessage};
use crate::session_config::StoredSessionConfig;

/// What the prompt step gives the rest of the turn.
pub(crate) struct Prompt {
    pub(crate) request: ChatRequest,
    /// The request's token estimate and its message count then: the turn only appends
    /// messages, so its end adds theirs instead of estimating the whole prompt again.
    pub(crate) estimate: (u64, usize),
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
    // The session's tier is read in the same job as its history, so the bound is the largest
    // window any tier has.
    let history_chars = history_chars_needed(settings.models.largest_context_window());
    let (record, history) = begin_turn(deps, session_id, &turn.messages, history_chars).await?;
    let overrides = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    let provider = settings.provider(overrides.model_tier.as_deref());
    // Room for the overflow note, the turn's messages and the answer: the prompt is not
    // reallocated (and moved) while it is built and answered.
    let room = turn.messages.len() + 2;
    let (mut messages, history_tokens) = replayed(history, &overrides, room);
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
    let tools = if may_use_tools {
        offered_tools(settings)
    } else {
        Arc::from([])
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
    let estimate = trim_to_window(
        &mut request,
        (history_len, history_tokens),
        provider.context_window(),
    );
    Ok(Prompt {
        estimate: (estimate, request.messages.len()),
        request,
        provider,
        may_use_tools,
    })
}

/// The store work of a turn's start in one job and one transaction (`Store::begin_turn`): the
/// session created if missing, its record and history read, the turn's messages stored with
/// their senders' presence. Returns the session's record and its history before the turn, as
/// far back as `history_chars` characters of conversation.
async fn begin_turn(
    deps: &Deps,
    session_id: &str,
    messages: &[UserMessage],
    history_chars: u64,
) -> Result<(Option<SessionRecord>, Vec<HistoryMessage>), RpcError> {
    let now = now_ms();
    let (frontend, user_id) = split_session_id(session_id);
    let messages = messages
        .iter()
        .map(|m| TurnMessage {
            content: m.text.clone(),
            attachments: attachments_meta(m),
            created_at_ms: now,
            presence: Some(PresenceUpdate {
                channel: frontend.to_owned(),
                sender_id: m.presence_sender.as_deref().unwrap_or(user_id).to_owned(),
                sender_name: m.sender_name.clone(),
            }),
        })
        .collect();
    let context = deps
        .store
        .begin_turn(TurnStart {
            session_id: session_id.to_owned(),
            now_ms: now,
            history_limit: HISTORY_MESSAGES,
            history_chars: Some(history_chars),
            messages,
        })
        .await
        .map_err(store_err)?;
    Ok((context.session, context.history))
}

/// The stored history the model sees: after the compaction summary, user and assistant
/// messages only; with their token estimate, counted as they are copied (text only:
/// `estimate_text_message_tokens`) instead of in a second pass over the prompt.
fn replayed(
    history: Vec<HistoryMessage>,
    overrides: &StoredSessionConfig,
    room: usize,
) -> (Vec<ChatMessage>, u64) {
    let compacted_through = overrides
        .compaction
        .as_ref()
        .map_or(i64::MIN, |c| c.through_message_id);
    let mut tokens = 0;
    let mut messages = Vec::with_capacity(history.len() + room);
    for m in history {
        if m.id <= compacted_through {
            continue;
        }
        // Counted by the store once, when the message was kept (debug builds check it against
        // the content in `trim_to_window`).
        let chars = m.chars as u64;
        let message = match m.role {
            Role::User => ChatMessage::user(m.content),
            Role::Assistant => ChatMessage::assistant(m.content, Vec::new()),
            // Tool output and system notes are shown in history but not replayed to the
            // model: providers require tool results to follow their own tool calls.
            Role::Tool | Role::System => continue,
        };
        tokens += flynn_models::estimate_text_message_tokens_of_chars(chars);
        messages.push(message);
    }
    (messages, tokens)
}

/// The tools offered to the model, made once per tool registry (it is replaced on a
/// configuration reload) instead of on every turn, and shared by every request: deriving and
/// copying the tools' JSON Schemas was a large part of a short turn's CPU, and the one shared
/// `Arc` lets `flynn_models` estimate their tokens once too.
fn offered_tools(settings: &Settings) -> Arc<[ToolSpec]> {
    type Offered = (Arc<[ToolDescriptor]>, Arc<[ToolSpec]>);
    static LAST: Mutex<Option<Offered>> = Mutex::new(None);
    let descriptors = settings.tools.descriptors();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((made_from, specs)) = last.as_ref()
        && Arc::ptr_eq(made_from, &descriptors)
    {
        return specs.clone();
    }
    let specs: Arc<[ToolSpec]> = descriptors
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: t.input_schema.clone(),
        })
        .collect();
    *last = Some((descriptors, specs.clone()));
    specs
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

/// Stores a message that joins a running turn (steering): one job, as `begin_turn` does for
/// the turn's own messages.
pub(crate) async fn persist_user(
    deps: &Deps,
    session_id: &str,
    message: &UserMessage,
) -> Result<(), RpcError> {
    let now = now_ms();
    let attachments = attachments_meta(message);
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

/// The tokens a prompt may hold in `window`.
fn prompt_budget(window: u64) -> u64 {
    (window as f64 * PROMPT_SHARE) as u64
}

/// Characters of history (user and assistant messages, newest first) past which older
/// messages cannot reach a prompt for `window`: a replayed message estimates at more than a
/// quarter token per character (`estimate_text_message_tokens`), so history holding more than
/// four characters per token of the budget already exceeds it on its own, and
/// [`trim_to_window`] drops everything older. The store reads no further (`TurnStart`).
fn history_chars_needed(window: u64) -> u64 {
    prompt_budget(window).saturating_mul(4).saturating_add(1)
}

/// Whether a turn may call tools: every message it answers comes from a requester holding the
/// `operator` scope.
pub fn turn_may_use_tools(messages: &[UserMessage]) -> bool {
    messages.iter().all(|m| m.may_use_tools)
}

/// Drops the oldest history messages (never the current turn's) until the prompt's estimate
/// fits the model's window. The full history stays in the store; the `context_warning`
/// checkpoint keeps what the model no longer sees.
///
/// Linear in the history: the request's estimate is the history's (`history`: its length and
/// token estimate, counted by [`replayed`]) plus the rest, each dropped message's own estimate
/// is subtracted, and the dropped messages leave in one `drain`.
///
/// Returns the trimmed request's estimate (what `estimate_request_tokens` gives for it).
fn trim_to_window(request: &mut ChatRequest, history: (usize, u64), window: u64) -> u64 {
    let (history_len, history_tokens) = history;
    let budget = prompt_budget(window);
    let mut estimate =
        flynn_models::estimate_request_tokens_after(request, history_len, history_tokens);
    debug_assert_eq!(estimate, flynn_models::estimate_request_tokens(request));
    let mut dropped = 0;
    let drop_one = |estimate: &mut u64, message: &ChatMessage| {
        *estimate = estimate.saturating_sub(flynn_models::estimate_message_tokens(message));
    };
    while dropped < history_len && estimate > budget {
        drop_one(&mut estimate, &request.messages[dropped]);
        dropped += 1;
    }
    // A conversation must start with a user message for some APIs.
    while dropped < history_len && request.messages[dropped].role != flynn_models::Role::User {
        drop_one(&mut estimate, &request.messages[dropped]);
        dropped += 1;
    }
    request.messages.drain(..dropped);
    if dropped > 0 {
        tracing::debug!(
            dropped,
            "older history left out of the prompt to fit the context window"
        );
    }
    estimate
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::session_config::Compaction;

    /// A history message of `chars` characters, ASCII or not.
    fn message(id: i64, role: Role, chars: usize, ascii: bool) -> HistoryMessage {
        let content: String = if ascii {
            "a".repeat(chars)
        } else {
            "é€".chars().cycle().take(chars).collect()
        };
        HistoryMessage {
            id,
            role,
            chars: content.chars().count(),
            content: Arc::from(content),
        }
    }

    /// The store's character bound (`TurnStart::history_chars`, tested in `flynn-store`):
    /// newest first, up to the message with which user and assistant messages reach `chars`.
    fn bounded(history: &[HistoryMessage], chars: u64) -> Vec<HistoryMessage> {
        let mut counted = 0;
        let mut start = history.len();
        while start > 0 && counted < chars {
            start -= 1;
            let m = &history[start];
            if matches!(m.role, Role::User | Role::Assistant) {
                counted += m.chars as u64;
            }
        }
        history[start..].to_vec()
    }

    /// What the model is sent from `history`, and the estimate, as `build` makes them.
    fn prompt(
        history: Vec<HistoryMessage>,
        overrides: &StoredSessionConfig,
        system: &str,
        window: u64,
    ) -> (Vec<(flynn_models::Role, String)>, u64) {
        let (mut messages, tokens) = replayed(history, overrides, 1);
        let history_len = messages.len();
        messages.push(ChatMessage::user("and now?".to_owned()));
        let mut request = ChatRequest {
            model: "m".to_owned(),
            system: Some(system.to_owned()),
            messages,
            tools: Arc::from([]),
            max_output_tokens: None,
        };
        let estimate = trim_to_window(&mut request, (history_len, tokens), window);
        let sent = request
            .messages
            .into_iter()
            .map(|m| (m.role, m.content.to_string()))
            .collect();
        (sent, estimate)
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![
            4 => Just(Role::User),
            4 => Just(Role::Assistant),
            1 => Just(Role::Tool),
            1 => Just(Role::System),
        ]
    }

    proptest! {
        /// Reading history only as far as `history_chars_needed` changes nothing the model is
        /// sent: what lies further back would have been trimmed anyway.
        #[test]
        fn a_bounded_history_gives_the_same_prompt_as_the_whole(
            shapes in prop::collection::vec((role(), 0usize..3000, any::<bool>()), 0..60),
            window in 16u64..20_000,
            system_chars in 0usize..4000,
            compacted in prop::option::of(0i64..60),
        ) {
            let history: Vec<HistoryMessage> = shapes
                .into_iter()
                .enumerate()
                .map(|(i, (role, chars, ascii))| message(i as i64, role, chars, ascii))
                .collect();
            let overrides = StoredSessionConfig {
                compaction: compacted.map(|through| Compaction {
                    through_message_id: through,
                    summary: "earlier".to_owned(),
                }),
                ..StoredSessionConfig::default()
            };
            let system = "s".repeat(system_chars);
            let cut = bounded(&history, history_chars_needed(window));
            prop_assert_eq!(
                prompt(cut, &overrides, &system, window),
                prompt(history, &overrides, &system, window)
            );
        }
    }
}
