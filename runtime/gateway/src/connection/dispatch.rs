//! One incoming frame: a request is parsed and started (answered at once when its handler
//! answers from memory or its future is done on the first poll, else left running in the
//! connection's `inflight` set), a JSON-RPC batch starts every entry and answers with one array,
//! and frames that are not requests are answered or noted for the loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use flynn_protocol::wire::{self, Call, EventEmitter, EventJson, EventSink, RequestId, RpcError};
use flynn_protocol::wire::{Dispatched, ReplyFuture};
use flynn_protocol::{ErrorCode, Method};
use futures_util::FutureExt;
use futures_util::stream::FuturesUnordered;
use tokio_tungstenite::tungstenite::Message;

use super::service::ConnectionService;
use super::state::ConnectionState;

/// What an incoming message asks of the loop.
pub(super) enum Incoming {
    /// Write this reply.
    Reply(String),
    Pong,
    Close,
    Nothing,
}

/// The frames read in one round of the loop. The latency metric counts from their read; the
/// requests answered at once are recorded together when the round has handled them all (their
/// replies leave in its one flush), which takes one clock read per round instead of two per
/// request (each read costs tens of nanoseconds here, as much as the rest of the metric).
pub(super) struct Burst {
    arrived: Instant,
    /// The last requests answered at once, all of one method and outcome, not yet recorded.
    answered: Option<(Method, bool, u32)>,
}

impl Burst {
    pub(super) fn begin() -> Self {
        Self {
            arrived: Instant::now(),
            answered: None,
        }
    }

    fn answered(&mut self, method: Method, ok: bool) {
        match &mut self.answered {
            Some((m, o, n)) if *m == method && *o == ok => *n += 1,
            _ => {
                self.record();
                self.answered = Some((method, ok, 1));
            }
        }
    }

    /// Records the requests answered at once so far: from the read to now.
    pub(super) fn record(&mut self) {
        if let Some((method, ok, n)) = self.answered.take() {
            let elapsed = self.arrived.elapsed();
            crate::metrics::get().requests(method, ok, elapsed, n);
        }
    }
}

/// Handles one incoming message (`message_done` already told the inbound budget).
pub(super) fn incoming<'g, S: ConnectionService>(
    service: &'g S,
    state: &Arc<ConnectionState>,
    message: Message,
    inflight: &mut FuturesUnordered<Inflight<'g>>,
    burst: &mut Burst,
) -> Incoming {
    match message {
        Message::Text(text) => match wire::batch_entries(text.as_str()) {
            None => match wire::parse_request(text.as_str()) {
                Ok(request) => match begin(service, state, request, burst) {
                    Started::Ready(reply) => reply.map_or(Incoming::Nothing, Incoming::Reply),
                    Started::Pending(pending) => {
                        inflight.push(Inflight::One(pending));
                        Incoming::Nothing
                    }
                },
                Err(rejected) if rejected.silent => Incoming::Nothing,
                Err(rejected) => Incoming::Reply(rejected.reply()),
            },
            Some(Err(rejected)) => Incoming::Reply(rejected.reply()),
            Some(Ok(entries)) => start_batch(service, state, &entries, inflight, burst),
        },
        Message::Binary(_) => Incoming::Reply(wire::error_reply(
            None,
            false,
            &RpcError::invalid(
                "",
                "binary frames are not supported: send JSON requests as text frames",
            ),
        )),
        Message::Pong(_) => Incoming::Pong,
        Message::Close(_) => Incoming::Close,
        Message::Ping(_) | Message::Frame(_) => Incoming::Nothing,
    }
}

/// A JSON-RPC 2.0 batch (section 6): every entry starts now; the replies go out together as
/// one array once all are done (notifications contribute none, and a batch of notifications
/// gets no reply at all). Events of batched requests flow as usual, ahead of the array.
fn start_batch<'g, S: ConnectionService>(
    service: &'g S,
    state: &Arc<ConnectionState>,
    entries: &[&serde_json::value::RawValue],
    inflight: &mut FuturesUnordered<Inflight<'g>>,
    burst: &mut Burst,
) -> Incoming {
    let mut batch = BatchReply {
        parts: Vec::with_capacity(entries.len()),
    };
    for entry in entries {
        match wire::parse_request(entry.get()) {
            Ok(request) => match begin(service, state, request, burst) {
                Started::Ready(Some(reply)) => batch.parts.push(BatchPart::Done(reply)),
                Started::Ready(None) => {}
                Started::Pending(pending) => batch.parts.push(BatchPart::Waiting(pending)),
            },
            Err(rejected) if rejected.silent => {}
            Err(rejected) => batch.parts.push(BatchPart::Done(rejected.reply())),
        }
    }
    if batch.parts.is_empty() {
        return Incoming::Nothing;
    }
    let mut pending = Inflight::Batch(batch);
    match (&mut pending).now_or_never() {
        Some(Some(text)) => Incoming::Reply(text),
        Some(None) => Incoming::Nothing,
        None => {
            inflight.push(pending);
            Incoming::Nothing
        }
    }
}

/// A request just started: answered at once (`None` for a notification), or still running.
enum Started<'g> {
    Ready(Option<String>),
    Pending(PendingReply<'g>),
}

/// Events of notifications go nowhere: JSON-RPC 2.0 sends nothing back for them.
struct NoEvents;

impl EventSink for NoEvents {
    fn send_event(&self, _: &RequestId, _: bool, _: &'static str, _: EventJson) {}
}

/// Starts one request. Handlers that answer from memory reply at once, and so does a future
/// that is done on its first poll; the others are returned to wait in `inflight`.
fn begin<'g, S: ConnectionService>(
    service: &'g S,
    state: &Arc<ConnectionState>,
    request: wire::Request<'_>,
    burst: &mut Burst,
) -> Started<'g> {
    let wire::Request {
        id,
        jsonrpc,
        method,
        params,
        notification,
    } = request;
    let sink: Arc<dyn EventSink> = if notification {
        Arc::new(NoEvents)
    } else {
        state.clone()
    };
    let call = Call::new(
        state.clone(),
        EventEmitter::new(id.clone(), sink).with_jsonrpc(jsonrpc),
    );
    let reply = match service.dispatch(call, method, params) {
        Dispatched::Ready(reply) => {
            burst.answered(method, reply.is_ok());
            let text = reply_frame(reply, &id, jsonrpc, method);
            return Started::Ready((!notification).then_some(text));
        }
        Dispatched::Later(reply) => reply,
    };
    // A future may still be done on its first poll: answer it at once too.
    let mut pending = PendingReply {
        id,
        jsonrpc,
        method,
        reply,
        notification,
        started: burst.arrived,
    };
    match (&mut pending).now_or_never() {
        Some(text) => Started::Ready(text),
        None => Started::Pending(pending),
    }
}

/// The frame answering a request: its reply, or the handler's error (logged when internal).
fn reply_frame(
    reply: Result<String, RpcError>,
    id: &RequestId,
    jsonrpc: bool,
    method: Method,
) -> String {
    reply.unwrap_or_else(|error| {
        if error.code == ErrorCode::InternalError.code() {
            tracing::warn!(method = method.name(), error = %error.message, "internal error");
        }
        wire::error_reply(Some(id), jsonrpc, &error)
    })
}

/// A started request: resolves to its reply frame, the result or the handler's error (`None`
/// for a notification).
pub(super) struct PendingReply<'g> {
    id: RequestId,
    jsonrpc: bool,
    method: Method,
    reply: ReplyFuture<'g>,
    notification: bool,
    /// When the request was read (for the latency metric).
    started: Instant,
}

impl Future for PendingReply<'_> {
    type Output = Option<String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = &mut *self;
        this.reply.as_mut().poll(cx).map(|reply| {
            let elapsed = this.started.elapsed();
            crate::metrics::get().request(this.method, reply.is_ok(), elapsed);
            let text = reply_frame(reply, &this.id, this.jsonrpc, this.method);
            (!this.notification).then_some(text)
        })
    }
}

/// One entry of a batch: answered, or still running.
enum BatchPart<'g> {
    Done(String),
    Waiting(PendingReply<'g>),
    /// A notification that finished: nothing to send.
    Silent,
}

/// A batch's replies, sent as one array when the last entry is done.
pub(super) struct BatchReply<'g> {
    parts: Vec<BatchPart<'g>>,
}

impl Future for BatchReply<'_> {
    type Output = Option<String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut waiting = false;
        for part in self.parts.iter_mut() {
            if let BatchPart::Waiting(pending) = part {
                match Pin::new(pending).poll(cx) {
                    Poll::Ready(Some(text)) => *part = BatchPart::Done(text),
                    Poll::Ready(None) => *part = BatchPart::Silent,
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            return Poll::Pending;
        }
        let replies: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|part| match part {
                BatchPart::Done(text) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if replies.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(format!("[{}]", replies.join(","))))
    }
}

/// What a connection waits on: one request's reply, or a batch's.
pub(super) enum Inflight<'g> {
    One(PendingReply<'g>),
    Batch(BatchReply<'g>),
}

impl Future for Inflight<'_> {
    type Output = Option<String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        match self.get_mut() {
            Inflight::One(pending) => Pin::new(pending).poll(cx),
            Inflight::Batch(batch) => Pin::new(batch).poll(cx),
        }
    }
}
