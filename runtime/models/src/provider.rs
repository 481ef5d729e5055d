//! The one streaming trait every provider implements, and the task plumbing they share.
//!
//! Each `stream` call runs in its own tokio task that owns the whole call (HTTP request, body,
//! decoder). The task is raced against the caller's [`CancellationToken`] and against the
//! receiver being dropped; whichever comes first drops the call's future, which drops the HTTP
//! response body and so closes the connection at once. That is how an abort reaches the socket
//! instead of waiting for a timeout.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ProviderError;
use crate::types::{ChatRequest, StreamEvent, ToolCall};

/// The receiving end of a model stream. See [`StreamEvent`] for the order of items.
pub type EventReceiver = mpsc::Receiver<Result<StreamEvent, ProviderError>>;

/// Items buffered between the provider task and the consumer. Small, so a consumer that stops
/// reading applies back-pressure to the HTTP read instead of letting text pile up in memory.
pub(crate) const CHANNEL_CAPACITY: usize = 32;

/// A model backend. Object-safe, so the gateway can hold `Arc<dyn Provider>` per model tier.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider kind: `embedded`, `openai` or `anthropic`.
    fn name(&self) -> &str;
    /// The configured model name (used when a request leaves `model` empty).
    fn model(&self) -> &str;
    /// Context window of the model, in tokens, for the gateway's context budget.
    fn context_window(&self) -> u64;
    /// Whether images in the conversation are sent to the model (otherwise the caller should
    /// describe or drop them).
    fn accepts_images(&self) -> bool;
    /// Starts one model call. Events arrive on the returned receiver; the stream ends after
    /// `Finished` or after an `Err` item.
    ///
    /// When `cancel` fires, the in-flight HTTP response is dropped (its connection closed) and the
    /// stream ends with `Err(ProviderError::Cancelled)`. Dropping the receiver stops the work
    /// too. Must be called inside a tokio runtime; outside one, the receiver yields a single
    /// `Transport` error.
    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver;

    /// [`Provider::stream`] of a request the caller keeps: the agent lends its prompt to each
    /// model call instead of copying it (a copy and a drop per message per call), and passes
    /// `estimated_tokens`, its own [`crate::estimate_request_tokens`] of `request`, so a
    /// provider that reports usage as that estimate (the embedded model) need not count the
    /// whole prompt again. The default copies the request for [`Provider::stream`] (the HTTP
    /// providers build their own body from it anyway) and ignores the estimate.
    fn stream_shared(
        &self,
        request: Arc<ChatRequest>,
        estimated_tokens: Option<u64>,
        cancel: CancellationToken,
    ) -> EventReceiver {
        let _ = estimated_tokens;
        self.stream(Arc::unwrap_or_clone(request), cancel)
    }
}

/// The sending side handed to a provider's stream task.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<Result<StreamEvent, ProviderError>>,
}

impl EventSink {
    /// Forwards one event; fails with `Cancelled` once the receiver is gone, so the task stops.
    pub(crate) async fn send(&self, event: StreamEvent) -> Result<(), ProviderError> {
        self.tx
            .send(Ok(event))
            .await
            .map_err(|_| ProviderError::Cancelled)
    }
}

enum Outcome {
    Cancelled,
    ReceiverGone,
    Done(Result<(), ProviderError>),
}

/// Runs `work` in a new task, racing it against `cancel` and the receiver being dropped.
pub(crate) fn spawn_stream<F, Fut>(
    provider: &str,
    cancel: CancellationToken,
    work: F,
) -> EventReceiver
where
    F: FnOnce(EventSink) -> Fut,
    Fut: Future<Output = Result<(), ProviderError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // Capacity is at least one, so this cannot fail on a fresh channel.
        let _ = tx.try_send(Err(ProviderError::Transport {
            detail: "Provider::stream was called outside a tokio runtime; call it from async code"
                .into(),
        }));
        return rx;
    };
    let sink = EventSink { tx: tx.clone() };
    let work = Box::pin(work(sink));
    let provider = provider.to_owned();
    runtime.spawn(async move {
        let mut work = work;
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Outcome::Cancelled,
            () = tx.closed() => Outcome::ReceiverGone,
            result = &mut work => Outcome::Done(result),
        };
        // Dropping the call's future drops any HTTP response body, which closes its connection.
        drop(work);
        match outcome {
            Outcome::Cancelled => {
                tracing::debug!(provider, "model stream cancelled");
                let _ = tx.send(Err(ProviderError::Cancelled)).await;
            }
            Outcome::ReceiverGone => {
                tracing::debug!(provider, "model stream receiver dropped; call stopped");
            }
            Outcome::Done(Ok(())) => {}
            Outcome::Done(Err(error)) => {
                tracing::debug!(provider, %error, "model stream failed");
                let _ = tx.send(Err(error)).await;
            }
        }
    });
    rx
}

/// A whole model answer, gathered from a stream by [`collect`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectedResponse {
    /// All text deltas joined.
    pub text: String,
    /// Every tool call, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Every attachment: (mime type, base64 data, file name).
    pub attachments: Vec<(String, String, Option<String>)>,
    /// Prompt tokens reported (or estimated).
    pub input_tokens: u64,
    /// Generated tokens reported (or estimated).
    pub output_tokens: u64,
    /// The normalised stop reason.
    pub stop_reason: String,
    /// How many text deltas arrived (useful to check that a reply really streamed).
    pub text_deltas: usize,
}

/// Drains a stream into one response; the first error ends it. A stream that closes without
/// `Finished` is reported as [`ProviderError::StreamCut`].
pub async fn collect(mut receiver: EventReceiver) -> Result<CollectedResponse, ProviderError> {
    let mut response = CollectedResponse::default();
    while let Some(item) = receiver.recv().await {
        match item? {
            StreamEvent::TextDelta(text) => {
                response.text.push_str(&text);
                response.text_deltas += 1;
            }
            StreamEvent::ToolCall(call) => response.tool_calls.push(call),
            StreamEvent::Attachment {
                mime_type,
                data_base64,
                filename,
            } => response
                .attachments
                .push((mime_type, data_base64, filename)),
            StreamEvent::Usage {
                input_tokens,
                output_tokens,
            } => {
                response.input_tokens = input_tokens;
                response.output_tokens = output_tokens;
            }
            StreamEvent::Finished { stop_reason } => {
                response.stop_reason = stop_reason;
                return Ok(response);
            }
        }
    }
    Err(ProviderError::StreamCut {
        detail: "the provider task ended without a Finished event".into(),
    })
}

/// Parses the accumulated argument text of a tool call. Empty means no arguments (`{}`); text
/// that is not JSON is kept as a JSON string so the caller's schema check fails visibly and the
/// model can be told, instead of the whole answer being lost.
pub(crate) fn parse_tool_arguments(tool: &str, raw: &str) -> serde_json::Value {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    match serde_json::from_str(trimmed) {
        Ok(value) => value,
        Err(error) => {
            tracing::warn!(tool, %error, "model produced tool arguments that are not JSON");
            serde_json::Value::String(raw.to_owned())
        }
    }
}
