//! The Messages stream's decoder: content blocks by index, usage from `message_start` and
//! `message_delta`, the `error` event mapped to a [`ProviderError`] by Anthropic's error type.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::ProviderError;
use crate::http::{Flow, SseHandler};
use crate::provider::parse_tool_arguments;
use crate::sse::SseEvent;
use crate::types::{StreamEvent, ToolCall, estimate_tokens, stop_reason};

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
pub(super) fn stream_error(value: &Value) -> ProviderError {
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
