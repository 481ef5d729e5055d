//! The one streaming trait every provider implements, and the call plumbing they share.
//!
//! A model call is a future (HTTP request, body, decoder) that hands each event to an
//! [`EventSink`]. The caller's [`EventReceiver`] owns that future and polls it itself, in the
//! caller's task: no task and no channel per call, so an event is not handed from one task to
//! another (a wakeup of each) on its way to the caller. Each poll first checks the caller's
//! [`CancellationToken`]; once it fires, or once the receiver is dropped, the call's future is
//! dropped, which drops the HTTP response body and so closes the connection at once. That is
//! how an abort reaches the socket instead of waiting for a timeout.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::ProviderError;
use crate::types::{ChatRequest, StreamEvent, ToolCall};

/// One item of a model stream: an event, or the error that ends it.
pub type StreamItem = Result<StreamEvent, ProviderError>;

/// Items a short answer may have queued whole at the call (see the embedded model).
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
    /// Starts one model call. Events arrive on the returned receiver, whose `recv` drives the
    /// call; the stream ends after `Finished` or after an `Err` item.
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

/// The event a call's future handed over and the receiver has not taken yet.
type Slot = Arc<Mutex<Option<StreamEvent>>>;

/// What a provider's call hands its events to.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    slot: Slot,
}

impl EventSink {
    /// Hands one event to the receiver. The future is pending once after the hand-over, without
    /// a wakeup: the receiver polling the call takes the event and returns it, and polls the call
    /// again on its next `recv`. So each event leaves the call on its own, and a wait of the
    /// call (I/O, a timer, a `yield_now`) is always a real one, seen by the caller's task.
    /// The `Result` is the providers' `?` chain; it never fails (a dropped receiver drops the
    /// call itself).
    pub(crate) async fn send(&self, event: StreamEvent) -> Result<(), ProviderError> {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(event);
        let mut handed = false;
        std::future::poll_fn(|_| {
            if handed {
                Poll::Ready(())
            } else {
                handed = true;
                Poll::Pending
            }
        })
        .await;
        Ok(())
    }
}

/// A call in progress, polled by its [`EventReceiver`].
struct Call {
    provider: &'static str,
    work: Pin<Box<dyn Future<Output = Result<(), ProviderError>> + Send>>,
    cancel: CancelWatch,
    /// The call was polled (a cancelled token sends no request: see [`EventReceiver::poll_recv`]).
    started: bool,
    slot: Slot,
}

/// The call's cancellation, looked at whenever the call waits (about once per streamed
/// chunk) for a few instructions. Polling the token's future each time took its waiters' lock
/// and the token's own (about 150 instructions per chunk); instead the future is polled with
/// a waker of ours ([`Fired`]), which notes that it fired and wakes the caller's task, and it
/// is polled again only then.
struct CancelWatch {
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    fired: Arc<Fired>,
    /// `fired` as a `Waker`, made once per call.
    waker: Waker,
    /// The future was polled with `waker` (so it wakes it when the token fires).
    armed: bool,
}

/// What the cancellation's future wakes: a flag, and the task that polls the call.
#[derive(Default)]
struct Fired {
    flag: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl CancelWatch {
    fn new(cancel: CancellationToken) -> Self {
        let fired = Arc::new(Fired::default());
        Self {
            cancelled: Box::pin(cancel.cancelled_owned()),
            waker: Waker::from(fired.clone()),
            fired,
            armed: false,
        }
    }

    /// Whether the token fired; if not, `task` is woken when it does.
    fn fired(&mut self, task: &Waker) -> bool {
        self.fired.task.register(task);
        if self.armed && !self.fired.flag.load(Ordering::Acquire) {
            return false;
        }
        // The first look, or the flag is up (the token fired, or a spurious wakeup): ask the
        // future itself, which registers `waker` again if it is still pending.
        self.fired.flag.store(false, Ordering::Release);
        self.armed = true;
        let mut cx = Context::from_waker(&self.waker);
        self.cancelled.as_mut().poll(&mut cx).is_ready()
    }
}

/// The receiving end of a model stream. See [`StreamEvent`] for the order of items. `recv`
/// runs the call in the caller's task (see the module documentation).
pub struct EventReceiver {
    /// Items ready without polling: a short answer queued whole, or the error ending a call.
    queued: VecDeque<StreamItem>,
    call: Option<Call>,
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver")
            .field("queued", &self.queued.len())
            .field("call", &self.call.as_ref().map(|call| call.provider))
            .finish()
    }
}

impl EventReceiver {
    /// A stream whose items are all known already.
    pub(crate) fn ready(items: VecDeque<StreamItem>) -> Self {
        Self {
            queued: items,
            call: None,
        }
    }

    /// The next item, driving the call until it has one; `None` after the last.
    pub async fn recv(&mut self) -> Option<StreamItem> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// An item that is ready without driving the call (a short answer queued whole, or the
    /// error of a call that ended): `Empty` while a call is in progress, `Disconnected` after
    /// the last item.
    pub fn try_recv(&mut self) -> Result<StreamItem, TryRecvError> {
        match self.queued.pop_front() {
            Some(item) => Ok(item),
            None if self.call.is_some() => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Disconnected),
        }
    }

    /// Polls the call until it hands over an event, ends, waits, or is cancelled.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamItem>> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Poll::Ready(Some(item));
            }
            let Some(call) = self.call.as_mut() else {
                return Poll::Ready(None);
            };
            // The cancellation is looked at before the call starts, then whenever the call
            // waits (which registers its wakeup), not after each event the call hands over: an
            // event that was ready with the cancellation may still be handed out, as the old
            // task's channel did.
            if !call.started && call.cancel.fired(cx.waker()) {
                tracing::debug!(provider = call.provider, "model stream cancelled");
                self.end(Some(ProviderError::Cancelled));
                continue;
            }
            match call.work.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => self.end(None),
                Poll::Ready(Err(error)) => {
                    tracing::debug!(provider = call.provider, %error, "model stream failed");
                    self.end(Some(error));
                }
                Poll::Pending => {
                    let handed = call
                        .slot
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    call.started = true;
                    match handed {
                        Some(event) => return Poll::Ready(Some(Ok(event))),
                        // Registers the cancellation's wakeup beside the call's own.
                        None if !call.cancel.fired(cx.waker()) => {
                            return Poll::Pending;
                        }
                        None => {
                            tracing::debug!(provider = call.provider, "model stream cancelled");
                            self.end(Some(ProviderError::Cancelled));
                        }
                    }
                }
            }
        }
    }

    /// Drops the call (and with it any HTTP response body, which closes its connection);
    /// `error` is the stream's last item.
    fn end(&mut self, error: Option<ProviderError>) {
        if let Some(call) = self.call.take() {
            let handed = call
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            self.queued.extend(handed.map(Ok));
        }
        self.queued.extend(error.map(Err));
    }
}

/// Starts a call: `work` runs when the returned receiver is polled, raced against `cancel`.
pub(crate) fn start_call<F, Fut>(
    provider: &'static str,
    cancel: CancellationToken,
    work: F,
) -> EventReceiver
where
    F: FnOnce(EventSink) -> Fut,
    Fut: Future<Output = Result<(), ProviderError>> + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return EventReceiver::ready(VecDeque::from([Err(ProviderError::Transport {
            detail: "Provider::stream was called outside a tokio runtime; call it from async code"
                .into(),
        })]));
    }
    let slot = Slot::default();
    let sink = EventSink { slot: slot.clone() };
    EventReceiver {
        queued: VecDeque::new(),
        call: Some(Call {
            provider,
            work: Box::pin(work(sink)),
            cancel: CancelWatch::new(cancel),
            started: false,
            slot,
        }),
    }
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
        detail: "the model call ended without a Finished event".into(),
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
