//! Anthropic Messages (`POST {base_url}/v1/messages`, `stream: true`).
//!
//! The stream is SSE with named events: `message_start` (input usage), per content block
//! `content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`) /
//! `content_block_stop`, then `message_delta` (stop reason, output usage) and `message_stop`;
//! `ping` may appear anywhere and `error` reports a failure mid-stream. Event types we do not
//! know (thinking blocks, future additions) are skipped, as Anthropic's versioning policy asks.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::{ProviderConfig, Secret, Timeouts};
use crate::error::ProviderError;
use crate::http::{Flow, HttpSettings, SseHandler, base_string, build_client, run_sse_call};
use crate::openai::object_schema;
use crate::provider::{EventReceiver, Provider, parse_tool_arguments, spawn_stream};
use crate::sse::SseEvent;
use crate::types::{
    ChatMessage, ChatRequest, ImagePart, Role, StreamEvent, ToolCall, estimate_request_tokens,
    estimate_tokens, stop_reason,
};

/// Default API root when `base_url` is not configured.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Default context window.
pub const ANTHROPIC_DEFAULT_CONTEXT_WINDOW: u64 = 200_000;
/// Default `max_tokens` (the API requires one).
pub const ANTHROPIC_DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4096;

/// Provider for the Anthropic Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    endpoint: String,
    api_key: Secret,
    model: String,
    context_window: u64,
    accepts_images: bool,
    max_output_tokens: u32,
    timeouts: Timeouts,
}

impl AnthropicProvider {
    /// Builds the provider; `api_key` is already resolved (config value or environment).
    pub(crate) fn new(
        config: &ProviderConfig,
        model: String,
        api_key: Secret,
    ) -> Result<Self, ProviderError> {
        let base_url = crate::http::normalize_base_url(
            config
                .base_url
                .as_deref()
                .unwrap_or(ANTHROPIC_DEFAULT_BASE_URL),
        )?;
        let client = build_client(&HttpSettings {
            base_url: base_url.clone(),
            timeouts: config.timeouts,
            ca_file: config.ca_file.clone(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                endpoint: format!("{}/v1/messages", base_string(&base_url)),
                api_key,
                model,
                context_window: config
                    .context_window
                    .unwrap_or(ANTHROPIC_DEFAULT_CONTEXT_WINDOW),
                accepts_images: config.accepts_images.unwrap_or(true),
                max_output_tokens: config
                    .max_output_tokens
                    .unwrap_or(ANTHROPIC_DEFAULT_MAX_OUTPUT_TOKENS),
                timeouts: config.timeouts,
            }),
        })
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.inner.model
    }

    fn context_window(&self) -> u64 {
        self.inner.context_window
    }

    fn accepts_images(&self) -> bool {
        self.inner.accepts_images
    }

    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        let inner = Arc::clone(&self.inner);
        spawn_stream("anthropic", cancel, move |sink| async move {
            let model = if request.model.is_empty() {
                inner.model.as_str()
            } else {
                request.model.as_str()
            };
            let max_tokens = request.max_output_tokens.unwrap_or(inner.max_output_tokens);
            let body = request_body(&request, model, max_tokens, inner.accepts_images);
            let http = inner
                .client
                .post(&inner.endpoint)
                .header("x-api-key", inner.api_key.expose())
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            let handler = AnthropicStream::new(estimate_request_tokens(&request));
            run_sse_call(http, inner.timeouts, handler, sink).await
        })
    }
}

fn image_block(image: &ImagePart) -> Value {
    json!({
        "type": "image",
        "source": { "type": "base64", "media_type": image.mime_type, "data": image.data_base64 }
    })
}

/// Anthropic requires `input` to be an object; a non-object (a model's malformed arguments kept
/// as a string) is wrapped so the history stays valid.
fn tool_input(arguments: &Value) -> Value {
    if arguments.is_object() {
        arguments.clone()
    } else {
        json!({ "value": arguments })
    }
}

/// Content blocks of one message (empty when it has nothing to send).
fn message_blocks(message: &ChatMessage, send_images: bool) -> Vec<Value> {
    let mut blocks = Vec::new();
    match message.role {
        Role::System => {}
        Role::User => {
            if send_images {
                blocks.extend(message.images.iter().map(image_block));
            }
            if !message.content.is_empty() {
                blocks.push(json!({ "type": "text", "text": message.content }));
            }
        }
        Role::Assistant => {
            if !message.content.is_empty() {
                blocks.push(json!({ "type": "text", "text": message.content }));
            }
            for call in &message.tool_calls {
                blocks.push(json!({
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": tool_input(&call.arguments),
                }));
            }
        }
        Role::Tool => {
            let mut result = json!({
                "type": "tool_result",
                "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
            });
            let images: &[ImagePart] = if send_images { &message.images } else { &[] };
            if images.is_empty() {
                if !message.content.is_empty() {
                    result["content"] = json!(message.content);
                }
            } else {
                let mut content = Vec::with_capacity(images.len() + 1);
                if !message.content.is_empty() {
                    content.push(json!({ "type": "text", "text": message.content }));
                }
                content.extend(images.iter().map(image_block));
                result["content"] = Value::Array(content);
            }
            blocks.push(result);
        }
    }
    blocks
}

/// The JSON body of a streaming Messages request. System-role messages join the `system`
/// field; tool results travel as `tool_result` blocks in a user message; consecutive messages of
/// the same role are merged into one (tool results first), as the API expects strict turns.
pub(crate) fn request_body(
    request: &ChatRequest,
    model: &str,
    max_tokens: u32,
    send_images: bool,
) -> Value {
    let mut system: Vec<&str> = request
        .system
        .as_deref()
        .filter(|s| !s.is_empty())
        .into_iter()
        .collect();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                if !message.content.is_empty() {
                    system.push(&message.content);
                }
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        let blocks = message_blocks(message, send_images);
        if blocks.is_empty() {
            tracing::debug!(?message.role, "skipping a message with nothing to send");
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": object_schema(&tool.input_schema),
                })
            })
            .collect();
    }
    body
}

#[derive(Debug)]
enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    Other,
}

/// Decoder state of one Messages stream.
#[derive(Debug, Default)]
pub(crate) struct AnthropicStream {
    input_estimate: u64,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stop_reason: Option<String>,
    blocks: HashMap<u64, Block>,
    output_text: String,
}

fn u64_at(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(Value::as_u64)
}

/// The error of an `error` event, by Anthropic's error type.
fn stream_error(value: &Value) -> ProviderError {
    let kind = value
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = value
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(|| crate::http::excerpt(&value.to_string()), str::to_owned);
    match kind {
        "rate_limit_error" => ProviderError::RateLimited {
            retry_after: None,
            message,
        },
        "authentication_error" => ProviderError::Unauthorized {
            status: 401,
            message,
        },
        "permission_error" => ProviderError::Unauthorized {
            status: 403,
            message,
        },
        "invalid_request_error" => ProviderError::BadRequest {
            status: 400,
            message,
        },
        "not_found_error" => ProviderError::BadRequest {
            status: 404,
            message,
        },
        "request_too_large" => ProviderError::BadRequest {
            status: 413,
            message,
        },
        "overloaded_error" => ProviderError::Server {
            status: 529,
            message,
        },
        "api_error" => ProviderError::Server {
            status: 500,
            message,
        },
        _ => ProviderError::Upstream { message },
    }
}

impl AnthropicStream {
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self {
            input_estimate,
            ..Self::default()
        }
    }

    fn on_message_start(&mut self, value: &Value) {
        let usage = value.pointer("/message/usage");
        if let Some(usage) = usage {
            let input = [
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            ]
            .iter()
            .filter_map(|key| usage.get(*key).and_then(Value::as_u64))
            .sum::<u64>();
            self.input_tokens = Some(input);
            self.output_tokens = usage.get("output_tokens").and_then(Value::as_u64);
        }
    }

    fn on_block_start(&mut self, value: &Value) {
        let Some(index) = u64_at(value, "/index") else {
            return;
        };
        let block = value.get("content_block").unwrap_or(&Value::Null);
        let text = |key: &str| {
            block
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let parsed = match block.get("type").and_then(Value::as_str) {
            Some("text") => Block::Text,
            Some("tool_use") => Block::Tool {
                id: text("id"),
                name: text("name"),
                json: String::new(),
                initial: block.get("input").cloned().unwrap_or(Value::Null),
            },
            _ => Block::Other,
        };
        self.blocks.insert(index, parsed);
    }

    fn on_block_delta(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let index = u64_at(value, "/index");
        let delta = value.get("delta").unwrap_or(&Value::Null);
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                if let Some(text) = delta.get("text").and_then(Value::as_str)
                    && !text.is_empty()
                {
                    self.output_text.push_str(text);
                    out.push(StreamEvent::TextDelta(text.to_owned()));
                }
            }
            Some("input_json_delta") => {
                let partial = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(Block::Tool { json, .. }) = index.and_then(|i| self.blocks.get_mut(&i))
                {
                    json.push_str(partial);
                }
            }
            _ => {} // thinking_delta, signature_delta, citations_delta: not part of our protocol
        }
    }

    fn on_block_stop(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let Some(index) = u64_at(value, "/index") else {
            return;
        };
        if let Some(Block::Tool {
            id,
            name,
            json,
            initial,
        }) = self.blocks.remove(&index)
        {
            let arguments = if json.trim().is_empty() && initial.is_object() {
                initial
            } else {
                parse_tool_arguments(&name, &json)
            };
            out.push(StreamEvent::ToolCall(ToolCall {
                id,
                name,
                arguments,
            }));
        }
    }

    fn on_message_delta(&mut self, value: &Value) {
        if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
            self.stop_reason = Some(reason.to_owned());
        }
        if let Some(output) = u64_at(value, "/usage/output_tokens") {
            self.output_tokens = Some(output);
        }
        if let Some(input) = u64_at(value, "/usage/input_tokens") {
            let cached = u64_at(value, "/usage/cache_creation_input_tokens").unwrap_or(0)
                + u64_at(value, "/usage/cache_read_input_tokens").unwrap_or(0);
            self.input_tokens = Some(input + cached);
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Usage {
            input_tokens: self.input_tokens.unwrap_or(self.input_estimate),
            output_tokens: self
                .output_tokens
                .unwrap_or_else(|| estimate_tokens(&self.output_text)),
        });
        out.push(StreamEvent::Finished {
            stop_reason: self
                .stop_reason
                .take()
                .unwrap_or_else(|| stop_reason::END_TURN.to_owned()),
        });
    }
}

impl SseHandler for AnthropicStream {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Flow, ProviderError> {
        let value: Value =
            serde_json::from_str(&event.data).map_err(|error| ProviderError::Decode {
                detail: format!(
                    "a Messages stream event is not valid JSON ({error}): {}",
                    crate::http::excerpt(&event.data)
                ),
            })?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => self.on_message_start(&value),
            "content_block_start" => self.on_block_start(&value),
            "content_block_delta" => self.on_block_delta(&value, out),
            "content_block_stop" => self.on_block_stop(&value, out),
            "message_delta" => self.on_message_delta(&value),
            "message_stop" => {
                self.finish(out);
                return Ok(Flow::Done);
            }
            "error" => return Err(stream_error(&value)),
            "ping" => {}
            other => tracing::debug!(event = other, "skipping unknown Messages stream event"),
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::StreamCut {
            detail: "the connection closed before message_stop".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolSpec;

    #[test]
    fn body_merges_turns_and_moves_system_messages() {
        let call = ToolCall {
            id: "toolu_1".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "Paris"}),
        };
        let mut user = ChatMessage::user("what is this?");
        user.images.push(ImagePart {
            mime_type: "image/jpeg".into(),
            data_base64: "/9j/".into(),
        });
        let request = ChatRequest {
            model: String::new(),
            system: Some("be brief".into()),
            messages: vec![
                ChatMessage::text(Role::System, "also kind"),
                user,
                ChatMessage::assistant("Let me check.", vec![call]),
                ChatMessage::tool_result("toolu_1", "sunny"),
                ChatMessage::user("thanks"),
            ],
            tools: vec![ToolSpec {
                name: "get_weather".into(),
                description: "weather".into(),
                input_schema: json!({"type":"object","properties":{"location":{"type":"string"}}}),
            }]
            .into(),
            max_output_tokens: None,
        };
        let body = request_body(&request, "claude", 100, true);
        assert_eq!(body["system"], "be brief\n\nalso kind");
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["stream"], true);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[0]["content"][0]["source"]["media_type"],
            "image/jpeg"
        );
        assert_eq!(messages[0]["content"][1]["text"], "what is this?");
        assert_eq!(messages[1]["content"][1]["type"], "tool_use");
        assert_eq!(messages[1]["content"][1]["input"]["location"], "Paris");
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(
            messages[2]["content"][0],
            json!({"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"})
        );
        assert_eq!(messages[2]["content"][1]["text"], "thanks");
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn error_events_map_by_type() {
        let overloaded =
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}});
        assert_eq!(
            stream_error(&overloaded),
            ProviderError::Server {
                status: 529,
                message: "Overloaded".into()
            }
        );
        let limited = json!({"type":"error","error":{"type":"rate_limit_error","message":"slow"}});
        assert!(matches!(
            stream_error(&limited),
            ProviderError::RateLimited { .. }
        ));
        let odd = json!({"type":"error","error":{"type":"brand_new_error","message":"x"}});
        assert!(matches!(stream_error(&odd), ProviderError::Upstream { .. }));
    }

    #[test]
    fn tool_use_without_deltas_keeps_its_initial_input() {
        let mut stream = AnthropicStream::new(0);
        let mut out = Vec::new();
        for data in [
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{"a":1}}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
        ] {
            stream
                .on_event(
                    SseEvent {
                        event: None,
                        data: data.into(),
                    },
                    &mut out,
                )
                .unwrap();
        }
        assert_eq!(
            out,
            vec![StreamEvent::ToolCall(ToolCall {
                id: "t".into(),
                name: "n".into(),
                arguments: json!({"a":1})
            })]
        );
    }
}
