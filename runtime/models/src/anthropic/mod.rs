//! Anthropic Messages (`POST {base_url}/v1/messages`, `stream: true`).
//!
//! The stream is SSE with named events: `message_start` (input usage), per content block
//! `content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`) /
//! `content_block_stop`, then `message_delta` (stop reason, output usage) and `message_stop`;
//! `ping` may appear anywhere and `error` reports a failure mid-stream. Event types we do not
//! know (thinking blocks, future additions) are skipped, as Anthropic's versioning policy asks.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::{ProviderConfig, Secret, Timeouts};
use crate::error::ProviderError;
use crate::http::{HttpSettings, base_string, build_client, run_sse_call};
use crate::openai::object_schema;
use crate::provider::{EventReceiver, Provider, start_call};
use crate::types::{ChatMessage, ChatRequest, ImagePart, Role, estimate_request_tokens};

mod stream;

use stream::AnthropicStream;

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
        start_call("anthropic", cancel, move |sink| async move {
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
                blocks.push(json!({ "type": "text", "text": &*message.content }));
            }
        }
        Role::Assistant => {
            if !message.content.is_empty() {
                blocks.push(json!({ "type": "text", "text": &*message.content }));
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
                    result["content"] = json!(&*message.content);
                }
            } else {
                let mut content = Vec::with_capacity(images.len() + 1);
                if !message.content.is_empty() {
                    content.push(json!({ "type": "text", "text": &*message.content }));
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

#[cfg(test)]
mod tests {
    use super::stream::stream_error;
    use super::*;
    use crate::http::SseHandler;
    use crate::sse::SseEvent;
    use crate::types::ToolSpec;
    use crate::types::{StreamEvent, ToolCall};

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
