//! The provider-neutral conversation and stream vocabulary.
//!
//! The agent loop speaks only these types; each provider translates them to and from its own wire
//! format, so swapping the embedded model for Ollama or Anthropic changes nothing upstream.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One model call: the conversation so far and the tools the model may call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name sent to the API. Empty means "the provider's configured model"
    /// ([`crate::Provider::model`]), which is what the agent loop normally wants.
    pub model: String,
    /// System prompt, sent the way each API expects (a leading `system` message for
    /// OpenAI-compatible servers, the `system` field for Anthropic).
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call; empty means none are offered. Shared: the agent offers the
    /// same tools on every call, and a request is cloned for each model call.
    #[serde(
        serialize_with = "shared::serialize",
        deserialize_with = "shared::deserialize"
    )]
    pub tools: Arc<[ToolSpec]>,
    /// Upper bound on generated tokens; `None` uses the provider's configured default.
    pub max_output_tokens: Option<u32>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Extra system instructions inside the conversation (Anthropic: merged into `system`).
    System,
    /// The human (or channel) side.
    User,
    /// The model; may carry tool calls.
    Assistant,
    /// The result of one tool call, answering the call named by `tool_call_id`.
    Tool,
}

/// An image sent to the model, inline as base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePart {
    /// For example `image/png` or `image/jpeg`.
    pub mime_type: String,
    /// Standard base64 (with padding) of the image bytes.
    pub data_base64: String,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// The text; for [`Role::Tool`] the tool's output. Shared: a prompt is cloned for each
    /// model call and its history comes shared from the store, so copying a request copies no
    /// text.
    #[serde(
        serialize_with = "shared::serialize_str",
        deserialize_with = "shared::deserialize_str"
    )]
    pub content: Arc<str>,
    /// Images attached to the message (user messages and tool results).
    #[serde(default)]
    pub images: Vec<ImagePart>,
    /// Tool calls the assistant made in this message.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// For [`Role::Tool`]: the id of the call this result answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A plain text message.
    pub fn text(role: Role, content: impl Into<Arc<str>>) -> Self {
        Self {
            role,
            content: content.into(),
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A user message.
    pub fn user(content: impl Into<Arc<str>>) -> Self {
        Self::text(Role::User, content)
    }

    /// An assistant message, optionally with the tool calls it made.
    pub fn assistant(content: impl Into<Arc<str>>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::text(Role::Assistant, content)
        }
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, output: impl Into<Arc<str>>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::text(Role::Tool, output)
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model uses to call it.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: serde_json::Value,
}

/// A call of a tool by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Id chosen by the model API; the tool result message must carry it back.
    pub id: String,
    /// Which tool.
    pub name: String,
    /// The arguments. When the model produced text that is not JSON, this is a JSON string holding
    /// that text, so schema validation of the call fails and the model can be told why.
    pub arguments: serde_json::Value,
}

/// One item of a model stream.
///
/// A successful stream is any number of `TextDelta`, `ToolCall` and `Attachment` items, then
/// exactly one `Usage`, then exactly one `Finished`. A failed stream ends with an `Err` item
/// instead (after which nothing follows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamEvent {
    /// The next piece of the answer text.
    TextDelta(String),
    /// A complete tool call (arguments fully received).
    ToolCall(ToolCall),
    /// A file produced by the model.
    Attachment {
        /// For example `image/png`.
        mime_type: String,
        /// Standard base64 of the file bytes.
        data_base64: String,
        /// Suggested file name, when the model gave one.
        filename: Option<String>,
    },
    /// Token counts of this call: the API's own figures, or an estimate (characters / 4) when the
    /// API reported none.
    Usage {
        /// Tokens of the prompt (including cached prompt tokens).
        input_tokens: u64,
        /// Tokens generated.
        output_tokens: u64,
    },
    /// The end of a successful stream; see [`stop_reason`] for the normalised values.
    Finished {
        /// Why the model stopped.
        stop_reason: String,
    },
}

/// Normalised stop reasons, the same for every provider (Anthropic's vocabulary; OpenAI's
/// `stop`, `tool_calls` and `length` are mapped onto it, anything else passes through unchanged).
pub mod stop_reason {
    /// The model finished its answer.
    pub const END_TURN: &str = "end_turn";
    /// The model wants tool results before it continues.
    pub const TOOL_USE: &str = "tool_use";
    /// The output hit `max_output_tokens`.
    pub const MAX_TOKENS: &str = "max_tokens";
    /// A stop sequence matched.
    pub const STOP_SEQUENCE: &str = "stop_sequence";
}

/// Tokens an image is assumed to cost in estimates (APIs count by pixel size, which we do not
/// decode); a round figure in the range of a small image.
pub const IMAGE_TOKEN_ESTIMATE: u64 = 256;

/// Rough token count of a text: characters / 4, rounded up. Used where an API reports no usage
/// and by the embedded model; good enough for context budgeting, not for billing.
#[inline]
pub fn estimate_tokens(text: &str) -> u64 {
    // ASCII text (most of it) has as many characters as bytes, and `is_ascii` checks a word
    // at a time where `chars().count()` goes byte by byte below 32 bytes: every message of
    // every prompt is counted on every turn.
    let chars = if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    } as u64;
    estimate_tokens_of_chars(chars)
}

/// [`estimate_tokens`] of a text of `chars` characters (for a caller that counted them once).
#[inline]
fn estimate_tokens_of_chars(chars: u64) -> u64 {
    chars.div_ceil(4)
}

/// Rough token count of a whole request (system, messages, tool calls, tool specs, images).
pub fn estimate_request_tokens(request: &ChatRequest) -> u64 {
    estimate_request_tokens_with_tools(request, estimate_shared_tools_tokens(&request.tools))
}

/// [`estimate_request_tokens`] of a request whose first `known` messages are known to
/// estimate `known_tokens` (the sum of their [`estimate_message_tokens`]): the agent counts
/// its history as it builds the prompt, so the prompt's estimate needs no second pass.
pub fn estimate_request_tokens_after(
    request: &ChatRequest,
    known: usize,
    known_tokens: u64,
) -> u64 {
    let mut total = request.system.as_deref().map_or(0, estimate_tokens) + known_tokens;
    for message in &request.messages[known.min(request.messages.len())..] {
        total += estimate_message_tokens(message);
    }
    total + estimate_shared_tools_tokens(&request.tools)
}

/// [`estimate_tools_tokens`] of a shared tool set, remembered for the last set seen: the agent
/// offers the same `Arc` on every request, and estimating means writing out each JSON Schema.
/// The memo holds the set itself, so its address cannot be reused by another set meanwhile.
fn estimate_shared_tools_tokens(tools: &Arc<[ToolSpec]>) -> u64 {
    type Memo = Option<(Arc<[ToolSpec]>, u64)>;
    static LAST: std::sync::Mutex<Memo> = std::sync::Mutex::new(None);
    if tools.is_empty() {
        return 0;
    }
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((seen, tokens)) = last.as_ref()
        && Arc::ptr_eq(seen, tools)
    {
        return *tokens;
    }
    let tokens = estimate_tools_tokens(tools);
    *last = Some((tools.clone(), tokens));
    tokens
}

/// [`estimate_request_tokens`] given the [`estimate_tools_tokens`] of the request's tools.
fn estimate_request_tokens_with_tools(request: &ChatRequest, tools_tokens: u64) -> u64 {
    let mut total = request.system.as_deref().map_or(0, estimate_tokens);
    for message in &request.messages {
        total += estimate_message_tokens(message);
    }
    total + tools_tokens
}

/// The tool specs' share of [`estimate_request_tokens`].
fn estimate_tools_tokens(tools: &[ToolSpec]) -> u64 {
    tools
        .iter()
        .map(|tool| {
            estimate_tokens(&tool.name)
                + estimate_tokens(&tool.description)
                + estimate_json_tokens(&tool.input_schema)
        })
        .sum()
}

/// Serde for a shared slice without serde's `rc` feature (which would change how every crate
/// of the workspace builds serde).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Arc<[T]>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().serialize(s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<[T]>, D::Error> {
        Vec::<T>::deserialize(d).map(Arc::from)
    }

    pub fn serialize_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize_str<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// One message's share of [`estimate_request_tokens`]: removing the message from a request
/// lowers the request's estimate by exactly this much (so trimming need not re-estimate).
pub fn estimate_message_tokens(message: &ChatMessage) -> u64 {
    let mut total = estimate_text_message_tokens(&message.content);
    total += message.images.len() as u64 * IMAGE_TOKEN_ESTIMATE;
    for call in &message.tool_calls {
        total += estimate_tokens(&call.name) + estimate_json_tokens(&call.arguments);
    }
    total
}

/// [`estimate_message_tokens`] of a message with text only (no images, no tool calls).
#[inline]
pub fn estimate_text_message_tokens(content: &str) -> u64 {
    // A few tokens of per-message framing, as the chat templates add.
    MESSAGE_FRAMING_TOKENS + estimate_tokens(content)
}

/// [`estimate_text_message_tokens`] of a text of `chars` characters.
#[inline]
pub fn estimate_text_message_tokens_of_chars(chars: u64) -> u64 {
    MESSAGE_FRAMING_TOKENS + estimate_tokens_of_chars(chars)
}

/// The tokens a message's framing adds to its content's in estimates.
const MESSAGE_FRAMING_TOKENS: u64 = 4;

/// [`estimate_tokens`] of a JSON value's compact text, counted as it is written rather than
/// built into a `String` (tool schemas are estimated on every request).
fn estimate_json_tokens(value: &serde_json::Value) -> u64 {
    /// Counts the characters written to it: every UTF-8 byte that does not continue one.
    struct CharCount(u64);
    impl std::io::Write for CharCount {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.iter().filter(|b| (**b & 0xC0) != 0x80).count() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = CharCount(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_estimate_matches_the_text_estimate() {
        let value = serde_json::json!({"type": "object", "é": ["ü", 1, null]});
        assert_eq!(
            estimate_json_tokens(&value),
            estimate_tokens(&value.to_string())
        );
    }

    #[test]
    fn estimate_rounds_up_per_four_chars() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Characters, not bytes.
        assert_eq!(estimate_tokens("éééé"), 1);
    }

    #[test]
    fn request_estimate_counts_every_part() {
        let empty = ChatRequest::default();
        assert_eq!(estimate_request_tokens(&empty), 0);
        let mut request = ChatRequest {
            system: Some("abcd".into()),
            messages: vec![ChatMessage::user("abcdefgh")],
            ..ChatRequest::default()
        };
        assert_eq!(estimate_request_tokens(&request), 1 + 4 + 2);
        request.messages[0].images.push(ImagePart {
            mime_type: "image/png".into(),
            data_base64: String::new(),
        });
        assert_eq!(estimate_request_tokens(&request), 7 + IMAGE_TOKEN_ESTIMATE);
    }
}
