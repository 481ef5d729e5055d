//! The embedded default model: no key, no network, deterministic.
//!
//! It exists so the gateway works out of the box and so tests can drive every event of the
//! stream protocol. It answers the **last user message** and streams its reply in chunks of
//! three words. Directives in that message (removed from the echoed text) shape the answer:
//!
//! | directive | effect |
//! | --- | --- |
//! | *(none)* or `[[echo]]` | the reply quotes the message: `You said: <text without directives>` |
//! | `[[tool:NAME]]`, `[[tool:NAME {json}]]` | emits a `ToolCall` (id `call_emb_<user turn>_<i>`, arguments the JSON or `{}`), stop reason `tool_use`; several directives give several calls in one turn. When the request already holds the tool results after that user message, the reply is `Tool NAME returned: <output>.` per result instead, stop reason `end_turn` |
//! | `[[attach:MIME]]`, `[[attach:MIME FILENAME]]` | emits an `Attachment` after the text, with a small valid payload (`image/png`: a 1x1 PNG, `image/gif`: a 1x1 GIF, `text/*`: a line of text, `application/json`: `{"embedded":true}`, anything else: a few bytes), and the text `Attached FILENAME (MIME).` |
//! | `[[long:N]]` | N words of filler text (at most 200 000), for context pressure |
//! | `[[delay:MS]]` | waits MS milliseconds before each chunk after the first and before the end (at most 60 000); cancellation is honoured during the wait |
//! | `[[fail:MESSAGE]]` | streams the first chunk, then ends with `Err(ProviderError::Upstream { message: MESSAGE })` |
//!
//! Images in the last user message add `I received N image(s) (mime, ...).` at the start.
//! `[[` followed by an unknown name is ordinary text; a known directive with a bad argument
//! (`[[long:abc]]`) fails the call with `BadRequest` naming the right form.
//!
//! A short answer (no `[[delay]]` or `[[fail]]`, at most 32 items in all) is queued whole when
//! the call is made: the caller still reads it chunk by chunk. Longer ones stream from the
//! call's future, which the caller's `recv` polls and which yields to the scheduler between
//! chunks, as a network stream would.
//!
//! Like a real model it has a context window (default 8192 tokens): a request whose estimated
//! size exceeds it fails with `BadRequest` ("prompt is too long"), and `max_output_tokens` cuts
//! the text (stop reason `max_tokens`, no attachments or tool calls). Usage is an estimate:
//! characters / 4 (see [`crate::estimate_request_tokens`]). Every successful stream ends with
//! `Usage` then `Finished`.

mod directives;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use directives::{MAX_DELAY_MS, MAX_LONG_WORDS};
pub use reply::{GIF_1X1_BASE64, PNG_1X1_BASE64};

use crate::error::ProviderError;
use crate::provider::{CHANNEL_CAPACITY, EventReceiver, EventSink, Provider, start_call};
use crate::types::{
    ChatRequest, StreamEvent, estimate_request_tokens, estimate_tokens, stop_reason,
};

/// Default context window of the embedded model: small, so tests reach context pressure cheaply.
pub const EMBEDDED_DEFAULT_CONTEXT_WINDOW: u64 = 8192;
/// Default model name.
pub const EMBEDDED_MODEL: &str = "flynn-embedded";
/// Words per streamed text chunk.
pub const WORDS_PER_CHUNK: usize = 3;

/// The embedded model (see the module documentation for its directives).
#[derive(Debug, Clone)]
pub struct EmbeddedProvider {
    model: String,
    context_window: u64,
    accepts_images: bool,
    max_output_tokens: Option<u32>,
}

impl Default for EmbeddedProvider {
    fn default() -> Self {
        Self::new(EMBEDDED_MODEL, EMBEDDED_DEFAULT_CONTEXT_WINDOW)
    }
}

impl EmbeddedProvider {
    /// An embedded model with the given name and context window.
    pub fn new(model: impl Into<String>, context_window: u64) -> Self {
        Self {
            model: model.into(),
            context_window,
            accepts_images: true,
            max_output_tokens: None,
        }
    }

    /// Sets whether images are accepted (reported by [`Provider::accepts_images`]).
    pub fn with_accepts_images(mut self, accepts_images: bool) -> Self {
        self.accepts_images = accepts_images;
        self
    }

    /// Sets the default output cap used when a request gives none.
    pub fn with_max_output_tokens(mut self, max_output_tokens: Option<u32>) -> Self {
        self.max_output_tokens = max_output_tokens;
        self
    }
}

/// Splits `text` into chunks of [`WORDS_PER_CHUNK`] words (a word ends after its space, as
/// `split_inclusive(' ')` cuts); joined they give `text` back exactly. The chunks are slices
/// of `text`, copied one at a time as they are sent: a long answer's chunks, built up front,
/// cost about a tenth of its streamed events' CPU.
pub(crate) fn chunk_text(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for _ in 0..WORDS_PER_CHUNK {
            end = match rest[end..].find(' ') {
                Some(space) => end + space + 1,
                None => rest.len(),
            };
            if end == rest.len() {
                break;
            }
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

/// The first `max_chars` characters of `text`.
fn truncate_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((byte, _)) => &text[..byte],
        None => text,
    }
}

/// Inside a tokio runtime (outside one, `start_call` reports the mistake, as for every
/// provider).
fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// The receiver of an answer whose `items` are all queued at once ([`Answer::at_once`]).
fn ready_stream(items: usize, answer: Answer) -> EventReceiver {
    let mut queued = std::collections::VecDeque::with_capacity(items);
    queued.extend(
        chunk_text(&answer.plan.text).map(|chunk| Ok(StreamEvent::TextDelta(chunk.to_owned()))),
    );
    queued.extend(answer.closing().map(Ok));
    EventReceiver::ready(queued)
}

async fn pause(delay: Duration) {
    if delay.is_zero() {
        // Still let other tasks run between chunks, as a network stream would.
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(delay).await;
    }
}

/// A call's whole answer, worked out before anything is sent.
struct Answer {
    plan: reply::Plan,
    stop: &'static str,
    input_tokens: u64,
}

impl Answer {
    /// Works out the answer to `request`. `estimated_tokens`: the caller's estimate of the
    /// request when it has one (the agent keeps its prompt's), the same figure without a
    /// second pass over every message.
    fn new(
        request: &ChatRequest,
        estimated_tokens: Option<u64>,
        context_window: u64,
        default_max_output: Option<u32>,
    ) -> Result<Self, ProviderError> {
        let input_tokens = match estimated_tokens {
            Some(tokens) => {
                debug_assert_eq!(tokens, estimate_request_tokens(request));
                tokens
            }
            None => estimate_request_tokens(request),
        };
        check_window(input_tokens, context_window)?;
        let mut plan = reply::plan(request)?;
        let mut stop = plan.stop_reason;
        if let Some(max) = request.max_output_tokens.or(default_max_output) {
            let max_chars = max as usize * 4;
            if plan.text.chars().count() > max_chars {
                plan.text = truncate_chars(&plan.text, max_chars).to_owned();
                plan.attachments.clear();
                plan.tool_calls.clear();
                stop = stop_reason::MAX_TOKENS;
            }
        }
        Ok(Self {
            plan,
            stop,
            input_tokens,
        })
    }

    /// How many items the stream has when they can all be queued at once: no delay, no
    /// failure, and few enough to fit the channel (a short answer); `None` otherwise.
    fn at_once(&self) -> Option<usize> {
        let plan = &self.plan;
        if !plan.delay.is_zero() || plan.fail.is_some() {
            return None;
        }
        let fixed = plan.attachments.len() + plan.tool_calls.len() + 2;
        let chunks = chunk_text(&plan.text)
            .take(CHANNEL_CAPACITY.saturating_sub(fixed) + 1)
            .count();
        (chunks + fixed <= CHANNEL_CAPACITY).then_some(chunks + fixed)
    }

    /// The items after the text: attachments, tool calls, usage and the end.
    fn closing(self) -> impl Iterator<Item = StreamEvent> {
        let Self {
            plan,
            stop,
            input_tokens,
        } = self;
        let mut output_tokens = estimate_tokens(&plan.text);
        for call in &plan.tool_calls {
            output_tokens +=
                estimate_tokens(&call.name) + estimate_tokens(&call.arguments.to_string());
        }
        let attachments = plan
            .attachments
            .into_iter()
            .map(|attachment| StreamEvent::Attachment {
                mime_type: attachment.mime_type,
                data_base64: attachment.data_base64,
                filename: attachment.filename,
            });
        attachments
            .chain(plan.tool_calls.into_iter().map(StreamEvent::ToolCall))
            .chain([
                StreamEvent::Usage {
                    input_tokens,
                    output_tokens,
                },
                StreamEvent::Finished {
                    stop_reason: stop.to_owned(),
                },
            ])
    }
}

fn check_window(input_tokens: u64, context_window: u64) -> Result<(), ProviderError> {
    if input_tokens > context_window {
        return Err(ProviderError::BadRequest {
            status: 400,
            message: format!(
                "prompt is too long: about {input_tokens} tokens, the embedded model's context \
                 window is {context_window}; compact the conversation or raise context_window"
            ),
        });
    }
    Ok(())
}

/// Streams an answer from the call's future: a chunk at a time, with the plan's delay (or a yield)
/// between chunks.
async fn run(answer: Answer, sink: EventSink) -> Result<(), ProviderError> {
    let plan = &answer.plan;
    for (index, chunk) in chunk_text(&plan.text).enumerate() {
        if index > 0 {
            if plan.fail.is_some() {
                break;
            }
            pause(plan.delay).await;
        }
        sink.send(StreamEvent::TextDelta(chunk.to_owned())).await?;
    }
    pause(plan.delay).await;
    if let Some(message) = &plan.fail {
        return Err(ProviderError::Upstream {
            message: message.clone(),
        });
    }
    for event in answer.closing() {
        sink.send(event).await?;
    }
    Ok(())
}

impl Provider for EmbeddedProvider {
    fn name(&self) -> &str {
        "embedded"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn context_window(&self) -> u64 {
        self.context_window
    }

    fn accepts_images(&self) -> bool {
        self.accepts_images
    }

    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        self.stream_shared(Arc::new(request), None, cancel)
    }

    fn stream_shared(
        &self,
        request: Arc<ChatRequest>,
        estimated_tokens: Option<u64>,
        cancel: CancellationToken,
    ) -> EventReceiver {
        let answer = Answer::new(
            &request,
            estimated_tokens,
            self.context_window,
            self.max_output_tokens,
        );
        // The request is worked out; the call need not hold it.
        drop(request);
        match answer {
            // A short answer with nothing to wait for is queued whole, here: no task, and no
            // wakeups of the caller between its items (a short turn's model call was a task
            // spawned and five handoffs). The caller still reads it item by item.
            Ok(answer) if !cancel.is_cancelled() && in_runtime() => match answer.at_once() {
                Some(items) => ready_stream(items, answer),
                None => start_call("embedded", cancel, move |sink| run(answer, sink)),
            },
            Ok(answer) => start_call("embedded", cancel, move |sink| run(answer, sink)),
            Err(error) => start_call("embedded", cancel, move |_| async move { Err(error) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_rejoin_exactly() {
        let text = "You said: one two three four\nfive  six";
        let chunks: Vec<&str> = chunk_text(text).collect();
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks[0], "You said: one ");
        assert_eq!(chunk_text("").count(), 0);
        // The same chunks as three `split_inclusive(' ')` pieces joined, the earlier way.
        for text in [
            text,
            "a  b",
            "a b c ",
            " ",
            "   x",
            "one two three",
            "é ü ö ä ß",
        ] {
            let pieces: Vec<&str> = text.split_inclusive(' ').collect();
            let expected: Vec<String> =
                pieces.chunks(WORDS_PER_CHUNK).map(|w| w.concat()).collect();
            assert_eq!(chunk_text(text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
