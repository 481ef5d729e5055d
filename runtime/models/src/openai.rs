//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`, `stream: true`).
//!
//! One dialect serves OpenAI, Ollama (`http://127.0.0.1:11434/v1`), llama.cpp server and vLLM.
//! The stream is SSE `data:` lines of `chat.completion.chunk` objects ending with `data: [DONE]`;
//! tool calls arrive as deltas keyed by `index` (id and name first, then argument text in
//! pieces) and are emitted whole once the choice finishes. `stream_options.include_usage` makes
//! the server send a last chunk with `usage` and no choices.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::{ProviderConfig, Secret, Timeouts};
use crate::error::ProviderError;
use crate::http::{Flow, HttpSettings, SseHandler, base_string, build_client, run_sse_call};
use crate::provider::{EventReceiver, Provider, parse_tool_arguments, start_call};
use crate::sse::SseEvent;
use crate::types::{
    ChatMessage, ChatRequest, Role, StreamEvent, ToolCall, estimate_request_tokens,
    estimate_tokens, stop_reason,
};

/// Default API root when `base_url` is not configured.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Default context window when the config gives none (conservative; set your model's figure).
pub const OPENAI_DEFAULT_CONTEXT_WINDOW: u64 = 8192;

/// Provider for OpenAI-compatible chat-completions servers.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    endpoint: String,
    api_key: Option<Secret>,
    model: String,
    context_window: u64,
    accepts_images: bool,
    max_output_tokens: Option<u32>,
    timeouts: Timeouts,
}

impl OpenAiProvider {
    /// Builds the provider; `api_key` is already resolved (config value or environment).
    pub(crate) fn new(
        config: &ProviderConfig,
        model: String,
        api_key: Option<Secret>,
    ) -> Result<Self, ProviderError> {
        let base_url = crate::http::normalize_base_url(
            config
                .base_url
                .as_deref()
                .unwrap_or(OPENAI_DEFAULT_BASE_URL),
        )?;
        let client = build_client(&HttpSettings {
            base_url: base_url.clone(),
            timeouts: config.timeouts,
            ca_file: config.ca_file.clone(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                endpoint: format!("{}/chat/completions", base_string(&base_url)),
                api_key,
                model,
                context_window: config
                    .context_window
                    .unwrap_or(OPENAI_DEFAULT_CONTEXT_WINDOW),
                accepts_images: config.accepts_images.unwrap_or(true),
                max_output_tokens: config.max_output_tokens,
                timeouts: config.timeouts,
            }),
        })
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
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
        start_call("openai", cancel, move |sink| async move {
            let model = if request.model.is_empty() {
                inner.model.as_str()
            } else {
                request.model.as_str()
            };
            let max_tokens = request.max_output_tokens.or(inner.max_output_tokens);
            let body = request_body(&request, model, max_tokens, inner.accepts_images);
            let mut http = inner
                .client
                .post(&inner.endpoint)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            if let Some(key) = &inner.api_key {
                http = http.bearer_auth(key.expose());
            }
            let handler = OpenAiStream::new(estimate_request_tokens(&request));
            run_sse_call(http, inner.timeouts, handler, sink).await
        })
    }
}

/// The JSON body of a streaming chat-completions request.
pub(crate) fn request_body(
    request: &ChatRequest,
    model: &str,
    max_tokens: Option<u32>,
    send_images: bool,
) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.extend(
        request
            .messages
            .iter()
            .map(|message| message_json(message, send_images)),
    );
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": object_schema(&tool.input_schema),
                    }
                })
            })
            .collect();
    }
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    body
}

/// A tool without a schema still needs an object schema on the wire.
pub(crate) fn object_schema(schema: &Value) -> Value {
    if schema.is_object() {
        schema.clone()
    } else {
        json!({ "type": "object", "properties": {} })
    }
}

/// Tool arguments as the JSON text the API carries (a non-JSON fallback string goes back as is).
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

fn message_json(message: &ChatMessage, send_images: bool) -> Value {
    match message.role {
        Role::System => json!({ "role": "system", "content": &*message.content }),
        Role::User => {
            if send_images && !message.images.is_empty() {
                let mut parts = Vec::with_capacity(message.images.len() + 1);
                if !message.content.is_empty() {
                    parts.push(json!({ "type": "text", "text": &*message.content }));
                }
                for image in &message.images {
                    parts.push(json!({
                        "type": "image_url",
                        "image_url": {
                            "url": format!("data:{};base64,{}", image.mime_type, image.data_base64)
                        }
                    }));
                }
                json!({ "role": "user", "content": parts })
            } else {
                json!({ "role": "user", "content": &*message.content })
            }
        }
        Role::Assistant => {
            let mut value = json!({ "role": "assistant" });
            value["content"] = if message.content.is_empty() && !message.tool_calls.is_empty() {
                Value::Null
            } else {
                json!(&*message.content)
            };
            if !message.tool_calls.is_empty() {
                value["tool_calls"] = message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": arguments_text(&call.arguments),
                            }
                        })
                    })
                    .collect();
            }
            value
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
            "content": &*message.content,
        }),
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Decoder state of one chat-completions stream.
#[derive(Debug, Default)]
pub(crate) struct OpenAiStream {
    input_estimate: u64,
    output_text: String,
    calls: BTreeMap<u32, PartialCall>,
    calls_emitted: usize,
    finish_reason: Option<String>,
    usage: Option<(u64, u64)>,
}

impl OpenAiStream {
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self {
            input_estimate,
            ..Self::default()
        }
    }

    fn flush_calls(&mut self, out: &mut Vec<StreamEvent>) {
        for (index, call) in std::mem::take(&mut self.calls) {
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            let arguments = parse_tool_arguments(&call.name, &call.arguments);
            out.push(StreamEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments,
            }));
            self.calls_emitted += 1;
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.flush_calls(out);
        let (input_tokens, output_tokens) = self.usage.unwrap_or_else(|| {
            tracing::debug!("server reported no usage; estimating");
            (self.input_estimate, estimate_tokens(&self.output_text))
        });
        out.push(StreamEvent::Usage {
            input_tokens,
            output_tokens,
        });
        let reason = match self.finish_reason.as_deref() {
            _ if self.calls_emitted > 0 => stop_reason::TOOL_USE.to_owned(),
            None | Some("stop") => stop_reason::END_TURN.to_owned(),
            Some("tool_calls" | "function_call") => stop_reason::TOOL_USE.to_owned(),
            Some("length") => stop_reason::MAX_TOKENS.to_owned(),
            Some(other) => other.to_owned(),
        };
        out.push(StreamEvent::Finished {
            stop_reason: reason,
        });
    }

    fn on_chunk(&mut self, chunk: Chunk, out: &mut Vec<StreamEvent>) {
        if let Some(usage) = chunk.usage {
            self.usage = Some((
                usage.prompt_tokens.unwrap_or(self.input_estimate),
                usage
                    .completion_tokens
                    .unwrap_or_else(|| estimate_tokens(&self.output_text)),
            ));
        }
        for choice in chunk.choices.unwrap_or_default() {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    self.output_text.push_str(&text);
                    out.push(StreamEvent::TextDelta(text));
                }
                for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate()
                {
                    let index = call.index.unwrap_or(position as u32);
                    let partial = self.calls.entry(index).or_default();
                    if let Some(id) = call.id.filter(|id| !id.is_empty()) {
                        partial.id = id;
                    }
                    if let Some(function) = call.function {
                        // The name comes whole in the first delta; some servers repeat it.
                        if let Some(name) = function.name.filter(|name| !name.is_empty())
                            && partial.name.is_empty()
                        {
                            partial.name = name;
                        }
                        if let Some(arguments) = function.arguments {
                            partial.arguments.push_str(&arguments);
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
                self.flush_calls(out);
            }
        }
    }
}

fn upstream_error(value: &Value) -> ProviderError {
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| value.as_str())
        .map_or_else(|| value.to_string(), str::to_owned);
    ProviderError::Upstream { message }
}

impl SseHandler for OpenAiStream {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(Flow::Done);
        }
        if event.event.as_deref() == Some("error") {
            let value = serde_json::from_str::<Value>(data).unwrap_or_else(|_| json!(data));
            return Err(upstream_error(value.get("error").unwrap_or(&value)));
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|error| ProviderError::Decode {
            detail: format!(
                "a chat.completion.chunk is not valid JSON ({error}): {}",
                crate::http::excerpt(data)
            ),
        })?;
        if let Some(error) = &chunk.error {
            return Err(upstream_error(error));
        }
        self.on_chunk(chunk, out);
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.finish_reason.is_some() {
            // Some servers close right after the finishing chunk without `[DONE]`: the answer
            // is complete, so accept it.
            tracing::debug!("stream closed after finish_reason without [DONE]");
            self.finish(out);
            return Ok(());
        }
        Err(ProviderError::StreamCut {
            detail: "the connection closed before finish_reason and [DONE]".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ImagePart, ToolSpec};

    fn feed(stream: &mut OpenAiStream, data: &str) -> (Vec<StreamEvent>, Flow) {
        let mut out = Vec::new();
        let flow = stream
            .on_event(
                SseEvent {
                    event: None,
                    data: data.into(),
                },
                &mut out,
            )
            .unwrap();
        (out, flow)
    }

    #[test]
    fn body_carries_system_images_tools_and_history() {
        let mut user = ChatMessage::user("look");
        user.images.push(ImagePart {
            mime_type: "image/png".into(),
            data_base64: "AAAA".into(),
        });
        let call = ToolCall {
            id: "call_1".into(),
            name: "shell".into(),
            arguments: json!({"cmd": "ls"}),
        };
        let request = ChatRequest {
            model: String::new(),
            system: Some("be brief".into()),
            messages: vec![
                user,
                ChatMessage::assistant("", vec![call]),
                ChatMessage::tool_result("call_1", "a b"),
            ],
            tools: vec![ToolSpec {
                name: "shell".into(),
                description: "run".into(),
                input_schema: Value::Null,
            }]
            .into(),
            max_output_tokens: None,
        };
        let body = request_body(&request, "m", Some(10), true);
        assert_eq!(
            body["messages"][0],
            json!({"role":"system","content":"be brief"})
        );
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"cmd\":\"ls\"}"
        );
        assert_eq!(
            body["messages"][3],
            json!({"role":"tool","tool_call_id":"call_1","content":"a b"})
        );
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(body["max_tokens"], 10);
        let without_images = request_body(&request, "m", None, false);
        assert_eq!(without_images["messages"][1]["content"], "look");
        assert!(without_images.get("max_tokens").is_none());
    }

    #[test]
    fn malformed_chunk_is_a_decode_error() {
        let mut stream = OpenAiStream::new(1);
        let error = stream
            .on_event(
                SseEvent {
                    event: None,
                    data: "{\"choices\": [".into(),
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(matches!(error, ProviderError::Decode { .. }), "{error}");
    }

    #[test]
    fn no_usage_means_an_estimate_and_bad_arguments_stay_visible() {
        let mut stream = OpenAiStream::new(7);
        let (first, _) = feed(
            &mut stream,
            r#"{"choices":[{"index":0,"delta":{"content":"abcdefgh","tool_calls":[{"index":0,"id":"c","function":{"name":"t","arguments":"{oops"}}]},"finish_reason":"tool_calls"}]}"#,
        );
        assert_eq!(
            first[1],
            StreamEvent::ToolCall(ToolCall {
                id: "c".into(),
                name: "t".into(),
                arguments: Value::String("{oops".into()),
            })
        );
        let (out, flow) = feed(&mut stream, "[DONE]");
        assert_eq!(flow, Flow::Done);
        assert_eq!(
            out,
            vec![
                StreamEvent::Usage {
                    input_tokens: 7,
                    output_tokens: 2
                },
                StreamEvent::Finished {
                    stop_reason: "tool_use".into()
                }
            ]
        );
    }

    #[test]
    fn in_stream_error_objects_are_upstream_errors() {
        let mut stream = OpenAiStream::new(0);
        let error = stream
            .on_event(
                SseEvent {
                    event: None,
                    data: r#"{"error":{"message":"model crashed"}}"#.into(),
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Upstream {
                message: "model crashed".into()
            }
        );
    }
}
