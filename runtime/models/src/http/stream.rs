//! Driving one streaming HTTP call: send, check the status, read the body chunk by chunk under
//! the idle timeout, decode SSE, and hand each event to the API-specific handler.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::config::Timeouts;
use crate::error::ProviderError;
use crate::http::errors::{error_from_status, excerpt};
use crate::provider::EventSink;
use crate::sse::{self, SseEvent};
use crate::types::StreamEvent;

/// Whether the handler expects more events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The terminal event arrived; the rest of the body is not read.
    Done,
}

/// Turns one API's SSE events into [`StreamEvent`]s.
pub(crate) trait SseHandler: Send {
    /// Handles one event, pushing what it produces to `out`.
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<Flow, ProviderError>;

    /// The body ended without [`Flow::Done`]: either finish (pushing the closing events) or
    /// report [`ProviderError::StreamCut`].
    fn on_eof(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// Error bodies larger than this are cut (they are only quoted in messages).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// `error` with its chain of causes, which is where reqwest keeps the useful part
/// ("connection refused", "invalid peer certificate", ...).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn send_error(error: &reqwest::Error, timeouts: &Timeouts) -> ProviderError {
    if error.is_connect() && error.is_timeout() {
        return ProviderError::Timeout {
            phase: "connecting",
            after: timeouts.connect(),
        };
    }
    ProviderError::Transport {
        detail: error_chain(error),
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body for an error message; a failure while
/// reading just ends the excerpt.
async fn read_body_excerpt(response: &mut reqwest::Response, idle: Duration) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    String::from_utf8_lossy(&body).into_owned()
}

/// Sends `request` and streams its SSE body through `handler` into `sink`.
pub(crate) async fn run_sse_call(
    request: reqwest::RequestBuilder,
    timeouts: Timeouts,
    mut handler: impl SseHandler,
    sink: EventSink,
) -> Result<(), ProviderError> {
    let first_byte = timeouts.first_byte();
    let mut response = match tokio::time::timeout(first_byte, request.send()).await {
        Err(_) => {
            return Err(ProviderError::Timeout {
                phase: "waiting for the response headers",
                after: first_byte,
            });
        }
        Ok(Err(error)) => return Err(send_error(&error, &timeouts)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let headers = response.headers().clone();
        let body = read_body_excerpt(&mut response, timeouts.idle()).await;
        tracing::debug!(status = status.as_u16(), body = %excerpt(&body), "model API error response");
        return Err(error_from_status(status.as_u16(), &headers, &body));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let body = read_body_excerpt(&mut response, timeouts.idle()).await;
        return Err(ProviderError::Decode {
            detail: format!(
                "expected an event stream (text/event-stream) but got JSON: {}; the server may \
                 not support streaming",
                excerpt(&body)
            ),
        });
    }

    let mut events = std::pin::pin!(sse::decode(body_chunks(response, timeouts)));
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        let flow = handler.on_event(event?, &mut out)?;
        for item in out.drain(..) {
            sink.send(item).await?;
        }
        if flow == Flow::Done {
            return Ok(());
        }
    }
    handler.on_eof(&mut out)?;
    for event in out.drain(..) {
        sink.send(event).await?;
    }
    Ok(())
}

/// The body's chunks, each awaited under the first-byte timeout (the first) or the idle timeout
/// (the rest): a keep-alive comment resets the idle timer as any other bytes do.
fn body_chunks(
    response: reqwest::Response,
    timeouts: Timeouts,
) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send {
    futures_util::stream::try_unfold((response, true), move |(mut response, first)| async move {
        let (wait, phase) = if first {
            (
                timeouts.first_byte(),
                "waiting for the first chunk of the stream",
            )
        } else {
            (timeouts.idle(), "waiting for the next chunk of the stream")
        };
        match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) => Err(ProviderError::Timeout { phase, after: wait }),
            Ok(Err(error)) => Err(ProviderError::StreamCut {
                detail: error_chain(&error),
            }),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(chunk))) => Ok(Some((chunk, (response, false)))),
        }
    })
}
