//! One WebSocket connection: reads frames, runs their handlers concurrently inside the
//! connection's task, writes replies and events (each event numbered with `seq`), keeps the
//! connection alive with pings, and closes it on request, on shutdown (1001) or when it cannot
//! keep up with its events (1008).
//!
//! Writes are fed into the sink and flushed once per wakeup, not once per frame: a flush per
//! frame costs several times the throughput.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use flynn_protocol::wire::Call;
use flynn_protocol::wire::{self, EventEmitter, EventSink, RequestId, RpcError};
use flynn_protocol::wire::{Dispatched, ReplyFuture};
use flynn_protocol::{ErrorCode, Method};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, info};

use crate::auth::{AuthError, Identity};
use crate::gateway::{ConnectionSlot, Gateway};
use crate::inbound::{BudgetExhausted, BudgetedStream};

type Socket = Box<WebSocketStream<BudgetedStream>>;

/// Events waiting for the connection's writer: bounded by `server.outbound_buffer_frames`, and
/// allocating only while frames wait (a channel would pre-allocate a block per idle connection).
pub struct EventQueue {
    frames: Mutex<std::collections::VecDeque<Outbound>>,
    /// How many frames wait: lets the writer skip the lock when there are none (the usual
    /// case, checked before every reply).
    queued: AtomicUsize,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
}

/// Why an event could not be queued.
enum QueueFull {
    Full,
    Closed,
}

impl EventQueue {
    fn new(capacity: usize) -> Self {
        Self {
            frames: Mutex::new(std::collections::VecDeque::new()),
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn push(&self, frame: Outbound) -> Result<(), QueueFull> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueFull::Closed);
        }
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        if frames.len() >= self.capacity {
            return Err(QueueFull::Full);
        }
        frames.push_back(frame);
        self.queued.fetch_add(1, Ordering::Release);
        drop(frames);
        self.ready.notify_one();
        Ok(())
    }

    fn try_pop(&self) -> Option<Outbound> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        let frame = frames.pop_front();
        if frame.is_some() {
            self.queued.fetch_sub(1, Ordering::Release);
        }
        if frames.is_empty() && frames.capacity() > 64 {
            // Give a burst's memory back once it has been written.
            frames.shrink_to_fit();
        }
        frame
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Frames from outside the connection's task (events of runs) waiting to be written.
pub enum Outbound {
    Event {
        id: RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: Value,
        /// The turn the event belongs to (`runId` / `runSeq` frame members).
        run: Option<wire::RunTag>,
    },
}

/// Per-connection state, shared with handlers (as `Call::connection`) and runs.
pub struct ConnectionState {
    pub id: String,
    pub peer: SocketAddr,
    /// Who authenticated the connection, and so which scopes it holds.
    pub identity: Identity,
    /// The session this connection is attached to (`ws:<connectionId>` until `sessions.create`).
    session: Mutex<String>,
    events: EventQueue,
    /// Set when the outbound queue overflowed: the connection is closed with 1008.
    slow: AtomicBool,
    wake: Notify,
    /// Close requested by a handler (`system.disconnect`), applied after its reply is written.
    close_request: Mutex<Option<(u16, String)>>,
    /// Whether `close_request` holds one: checked after every reply without taking the lock.
    close_requested: AtomicBool,
}

impl ConnectionState {
    /// The attached session id.
    pub fn session_id(&self) -> String {
        self.session
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn attach(&self, session_id: &str) {
        match self.session.lock() {
            Ok(mut s) => *s = session_id.to_owned(),
            Err(p) => *p.into_inner() = session_id.to_owned(),
        }
    }

    /// Whether `session_id` is this connection's own `ws:<id>` session.
    pub fn owns_session(&self, session_id: &str) -> bool {
        session_id
            .strip_prefix("ws:")
            .is_some_and(|rest| rest == self.id)
    }

    /// Asks the connection to close with `code` once the current reply is written.
    pub fn request_close(&self, code: u16, reason: &str) {
        if let Ok(mut c) = self.close_request.lock() {
            *c = Some((code, reason.to_owned()));
            self.close_requested.store(true, Ordering::Release);
        }
    }

    fn take_close_request(&self) -> Option<(u16, String)> {
        // A plain load first: the swap is a locked instruction, and this runs after every reply.
        if !self.close_requested.load(Ordering::Acquire)
            || !self.close_requested.swap(false, Ordering::AcqRel)
        {
            return None;
        }
        self.close_request.lock().ok().and_then(|mut c| c.take())
    }

    /// Whether the connection is still open for events.
    pub fn is_open(&self) -> bool {
        !self.events.closed.load(Ordering::Acquire)
    }
}

/// The gateway's view of a live connection (`crate::connections`).
impl crate::connections::Live for ConnectionState {
    fn id(&self) -> &str {
        &self.id
    }

    fn session_id(&self) -> String {
        ConnectionState::session_id(self)
    }

    fn attach(&self, session_id: &str) {
        ConnectionState::attach(self, session_id);
    }
}

impl EventSink for ConnectionState {
    fn send_event(&self, id: &RequestId, jsonrpc: bool, event: &'static str, data: Value) {
        self.push_event(id, jsonrpc, event, data, None);
    }

    fn send_run_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: Value,
        run: wire::RunTag,
    ) {
        self.push_event(id, jsonrpc, event, data, Some(run));
    }
}

impl ConnectionState {
    fn push_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: Value,
        run: Option<wire::RunTag>,
    ) {
        crate::metrics::get().event_sent(event);
        let frame = Outbound::Event {
            id: id.clone(),
            jsonrpc,
            event,
            data,
            run,
        };
        if let Err(QueueFull::Full) = self.events.push(frame) {
            // Never block a run on a client that does not read: drop the client instead.
            if !self.slow.swap(true, Ordering::AcqRel) {
                // `wake` reaches a writer blocked in a write; `ready` one waiting for work.
                self.wake.notify_one();
                self.events.ready.notify_one();
            }
        }
    }
}

/// Refuses an authenticated-later connection: one error frame (-4 or -5), then close 1008.
pub async fn refuse(mut ws: Socket, peer: SocketAddr, error: AuthError) {
    info!(%peer, error = %error, "websocket authentication failed");
    let frame = wire::error_reply(None, false, &RpcError::new(error.code(), error.to_string()));
    let _ = ws.send(Message::text(frame)).await;
    let _ = WebSocketStream::close(
        &mut *ws,
        Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "authentication failed".into(),
        }),
    )
    .await;
    drain_until_closed(ws).await;
}

/// Waits (bounded) for the peer's close reply so the close frame is really delivered.
async fn drain_until_closed(mut ws: Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Serves one authenticated connection until it closes.
pub async fn run(
    gateway: Arc<Gateway>,
    ws: Socket,
    peer: SocketAddr,
    identity: Identity,
    _slot: ConnectionSlot,
) {
    let config = gateway.config();

    let id = uuid::Uuid::new_v4().simple().to_string();
    let state = Arc::new(ConnectionState {
        session: Mutex::new(format!("ws:{id}")),
        id: id.clone(),
        peer,
        identity,
        events: EventQueue::new(config.server.outbound_buffer_frames),
        slow: AtomicBool::new(false),
        wake: Notify::new(),
        close_request: Mutex::new(None),
        close_requested: AtomicBool::new(false),
    });
    gateway.connections.register(state.clone());
    debug!(
        connection = %id,
        %peer,
        principal = state.identity.principal().unwrap_or("-"),
        "connected"
    );

    let close = serve(&gateway, ws, &state, &config.server).await;
    state.events.close();
    gateway.connections.unregister(&id);
    gateway.connection_closed(&state.id);
    match close {
        Ended::Closed(code) => debug!(connection = %id, code, "closed by the gateway"),
        other => debug!(connection = %id, ?other, "disconnected"),
    }
}

/// Why the loop ended.
#[derive(Debug)]
enum Ended {
    PeerClosed,
    Closed(u16),
    Broken,
    /// The peer stopped reading: a write made no progress for `WRITE_STALL`.
    Stalled,
}

/// Events already queued that make a write worth doing without first letting producers add
/// more (see the coalescing in `serve`).
const COALESCE_ENOUGH: usize = 16;

/// How long one write may make no progress before the peer is given up.
const WRITE_STALL: Duration = Duration::from_secs(10);
/// How long in-flight requests may run on after shutdown begins.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

async fn serve(
    gateway: &Gateway,
    ws: Socket,
    state: &Arc<ConnectionState>,
    server: &crate::config::ServerConfig,
) -> Ended {
    // One socket for both directions, unsplit: `select!` drops its branch futures before a
    // branch body runs, so the bodies may write to the socket the read branch was borrowing.
    let mut ws = ws;
    let mut inflight = FuturesUnordered::new();
    let mut seq: u64 = 0;
    let ping_every = Duration::from_millis(server.ping_interval_ms);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unanswered_pings = 0u32;
    // Futures the loop waits on in every round are made once, not per round: each would
    // register with (and then leave) its notifier's waiter list, under a lock, every time.
    let shutdown = gateway.shutdown.clone().cancelled_owned();
    tokio::pin!(shutdown);
    let events_ready = state.events.ready.notified();
    tokio::pin!(events_ready);

    // Sends a close frame, waits (bounded) for the peer's answer, then ends the connection.
    // The rare paths (closing, waiting on a blocked write) run in boxed futures: inline, their
    // timers would widen every idle connection's future (BENCHMARKS.md, finding 3).
    macro_rules! close {
        ($code:expr, $reason:expr) => {{
            Box::pin(close_socket(&mut ws, $code, $reason.into())).await;
            return Ended::Closed($code);
        }};
    }
    // Runs one write (a wait for room, or a flush). Most writes complete at once and pay for
    // nothing more. One that has to wait is guarded: a peer that stops reading fills the socket
    // and would park this task in the write, so the write gives way when the connection is
    // flagged as a slow consumer (close 1008), and a write that makes no progress for
    // WRITE_STALL drops it.
    macro_rules! guarded {
        ($write:expr) => {
            match ($write).now_or_never() {
                Some(Ok(())) => {}
                Some(Err(_)) => return Ended::Broken,
                None => match Box::pin(wait_for_write($write, &state.wake)).await {
                    Waited::Written => {}
                    Waited::Broken => return Ended::Broken,
                    Waited::Stalled => return Ended::Stalled,
                    Waited::SlowConsumer => {
                        close!(1008, "slow consumer: events were not read fast enough")
                    }
                },
            }
        };
    }
    // Writes a message without flushing: waits for room (rarely), then hands it to tungstenite.
    macro_rules! feed_message {
        ($message:expr) => {{
            guarded!(std::future::poll_fn(|cx| ws.poll_ready_unpin(cx)));
            if ws.start_send_unpin($message).is_err() {
                return Ended::Broken;
            }
        }};
    }
    // Writes a text frame without flushing.
    macro_rules! feed {
        ($text:expr) => {
            feed_message!(Message::text($text))
        };
    }
    // Writes every event already queued. Called before each reply: a request's events are
    // queued before its reply completes, so this keeps them ahead of it on the wire.
    macro_rules! feed_events {
        () => {
            while let Some(out) = state.events.try_pop() {
                seq += 1;
                feed!(encode(out, seq));
            }
        };
    }
    // Writes a reply: its events first, then the reply, then a close the handler asked for
    // (`system.disconnect`).
    macro_rules! reply {
        ($text:expr) => {{
            feed_events!();
            feed!($text);
            if let Some((code, reason)) = state.take_close_request() {
                Box::pin(flush_before_close(&mut ws)).await;
                close!(code, reason);
            }
        }};
    }

    // On shutdown the connection stops reading, lets in-flight requests finish (bounded) so each
    // gets its terminal reply, then closes with 1001.
    let mut draining = false;
    let drain_deadline = tokio::time::sleep(Duration::from_secs(0));
    tokio::pin!(drain_deadline);
    // One incoming message (answered at once, or its handler left running in `inflight`).
    macro_rules! on_message {
        ($message:expr) => {
            match $message {
                None => return Ended::PeerClosed,
                Some(Err(e)) => {
                    debug!(error = %e, "websocket read failed");
                    // RFC 6455 section 7.1.7: fail the connection with the code that says why.
                    if let Some((code, reason)) = failure_close(&e) {
                        close!(code, reason);
                    }
                    return Ended::Broken;
                }
                Some(Ok(message)) => {
                    if matches!(message, Message::Text(_) | Message::Binary(_)) {
                        ws.get_mut().message_done();
                    }
                    match incoming(gateway, state, message, &mut inflight) {
                        Incoming::Reply(text) => reply!(text),
                        Incoming::Pong => unanswered_pings = 0,
                        Incoming::Close => {
                            Box::pin(answer_close(&mut ws)).await;
                            return Ended::PeerClosed;
                        }
                        Incoming::Nothing => {}
                    }
                }
            }
        };
    }
    loop {
        if state.slow.load(Ordering::Acquire) {
            close!(1008, "slow consumer: events were not read fast enough");
        }
        if draining && inflight.is_empty() {
            feed_events!();
            Box::pin(flush_before_close(&mut ws)).await;
            close!(1001, "gateway shutting down");
        }
        tokio::select! {
            biased;
            _ = &mut shutdown, if !draining => {
                draining = true;
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + DRAIN_LIMIT);
            }
            _ = &mut drain_deadline, if draining => close!(1001, "gateway shutting down"),
            // Events are written below, after the select.
            _ = &mut events_ready => {
                events_ready.set(state.events.ready.notified());
                if state.slow.load(Ordering::Acquire) {
                    close!(1008, "slow consumer: events were not read fast enough");
                }
                // Coalescing: a run emits one event per model chunk and this task would wake
                // (and write) once per event. One scheduler round first lets the tasks that
                // are ready now (this connection's run among them) queue what they have, so
                // events that are ready together leave in one write. No timer: with nothing
                // else ready the round ends at once and a lone event is not held back.
                if state.events.queued.load(Ordering::Acquire) < COALESCE_ENOUGH {
                    tokio::task::yield_now().await;
                }
            }
            Some(reply) = inflight.next(), if !inflight.is_empty() => {
                if let Some(text) = reply {
                    reply!(text);
                }
            }
            message = ws.next(), if !draining => {
                // This message and every frame already buffered, before writing anything.
                let mut next = Some(message);
                let mut budget = 64;
                while let Some(message) = next.take() {
                    on_message!(message);
                    budget -= 1;
                    if budget > 0 {
                        next = ws.next().now_or_never();
                    }
                }
            }
            _ = ping.tick() => {
                if unanswered_pings >= 2 {
                    close!(1008, "no pong to two pings");
                }
                unanswered_pings += 1;
                feed_message!(Message::Ping(Default::default()));
            }
        }
        // Everything else that is ready goes into the same flush. Events first: a request's
        // events are queued before its reply completes, and must reach the wire before it.
        while let Some(out) = state.events.try_pop() {
            seq += 1;
            feed!(encode(out, seq));
        }
        while let Some(Some(reply)) = inflight.next().now_or_never() {
            if let Some(text) = reply {
                reply!(text);
            }
        }
        guarded!(ws.flush());
    }
}

/// How long a close frame may take to reach a peer that reads slowly (it waits behind what is
/// already buffered), and how long the peer then has to answer it.
const CLOSE_DELIVERY: Duration = Duration::from_secs(3);
const CLOSE_ANSWER: Duration = Duration::from_secs(2);

/// Sends a close frame, lets it reach the peer (bounded), and reads (bounded) until the peer
/// answers it, so the peer sees the code rather than a reset.
async fn close_socket(ws: &mut Socket, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: truncate_reason(reason).into(),
    };
    let close = ws.send(Message::Close(Some(frame)));
    if tokio::time::timeout(CLOSE_DELIVERY, close).await.is_err() {
        return;
    }
    drain_after_close(ws).await;
}

/// The peer sent a close frame: tungstenite has queued the answer (the same code); send it and
/// end the connection (RFC 6455 section 5.5.1).
async fn answer_close(ws: &mut Socket) {
    if tokio::time::timeout(CLOSE_DELIVERY, ws.flush())
        .await
        .is_err()
    {
        return;
    }
    drain_after_close(ws).await;
}

/// Reads what the peer still sends until the closing handshake ends (bounded): closing the
/// socket with unread bytes would reset the connection, and a reset can destroy the close frame
/// before the peer reads it. When tungstenite stops reading early (an error after the close,
/// such as a frame it refuses), the rest is read raw after a FIN (a lingering close), so the
/// socket is dropped with nothing unread whenever the peer ends within the bound.
async fn drain_after_close(ws: &mut Socket) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(CLOSE_ANSWER, async {
        while let Some(Ok(_)) = ws.next().await {}
        let stream = ws.get_mut();
        let _ = stream.shutdown().await;
        let mut discard = [0u8; 2048];
        while let Ok(n) = stream.read(&mut discard).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The close code for a read that failed, when the connection should be failed with one: 1002
/// for protocol errors, 1007 for text that is not UTF-8, 1009 for a frame over the limit, 1013
/// when the inbound memory budget is spent. `None` when the connection is simply gone.
fn failure_close(error: &tokio_tungstenite::tungstenite::Error) -> Option<(u16, String)> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match error {
        Error::Capacity(_) => Some((1009, "frame larger than server.max_frame_bytes".into())),
        Error::Utf8(_) => Some((1007, "a text frame is not valid UTF-8".into())),
        Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing,
        ) => None,
        Error::Protocol(e) => Some((1002, format!("protocol error: {e}"))),
        Error::Io(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<BudgetExhausted>()) =>
        {
            Some((1013, BudgetExhausted.to_string()))
        }
        _ => None,
    }
}

/// A close reason is at most 123 bytes (RFC 6455 section 5.5: control payloads of 125 bytes,
/// two of them the code).
fn truncate_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// Writes out what is buffered before a close, bounded by `WRITE_STALL`.
async fn flush_before_close(ws: &mut Socket) {
    let _ = tokio::time::timeout(WRITE_STALL, ws.flush()).await;
}

/// How a write that could not complete at once ended.
enum Waited {
    Written,
    Broken,
    /// No progress for `WRITE_STALL`: the peer stopped reading.
    Stalled,
    /// The connection was flagged as a slow consumer meanwhile.
    SlowConsumer,
}

/// Waits for a blocked write. A peer that stops reading fills the socket and would park the
/// connection's task here: the wait gives way when the connection is flagged as a slow consumer
/// (`wake` is only notified then), and a write that makes no progress for `WRITE_STALL` is
/// given up.
async fn wait_for_write<W>(write: W, wake: &Notify) -> Waited
where
    W: Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    tokio::select! {
        biased;
        written = tokio::time::timeout(WRITE_STALL, write) => match written {
            Ok(Ok(())) => Waited::Written,
            Ok(Err(_)) => Waited::Broken,
            Err(_) => Waited::Stalled,
        },
        _ = wake.notified() => Waited::SlowConsumer,
    }
}

fn encode(out: Outbound, seq: u64) -> String {
    match out {
        Outbound::Event {
            id,
            jsonrpc,
            event,
            data,
            run: None,
        } => wire::event_frame(&id, jsonrpc, event, &data, seq),
        Outbound::Event {
            id,
            jsonrpc,
            event,
            data,
            run: Some(run),
        } => wire::run_event_frame(&id, jsonrpc, event, &data, seq, &run),
    }
}

enum Incoming {
    Reply(String),
    Pong,
    Close,
    Nothing,
}

fn incoming<'g>(
    gateway: &'g Gateway,
    state: &Arc<ConnectionState>,
    message: Message,
    inflight: &mut FuturesUnordered<Inflight<'g>>,
) -> Incoming {
    match message {
        Message::Text(text) => match wire::batch_entries(text.as_str()) {
            None => match wire::parse_request(text.as_str()) {
                Ok(request) => match begin(gateway, state, request) {
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
            Some(Ok(entries)) => start_batch(gateway, state, &entries, inflight),
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
fn start_batch<'g>(
    gateway: &'g Gateway,
    state: &Arc<ConnectionState>,
    entries: &[&serde_json::value::RawValue],
    inflight: &mut FuturesUnordered<Inflight<'g>>,
) -> Incoming {
    let mut batch = BatchReply {
        parts: Vec::with_capacity(entries.len()),
    };
    for entry in entries {
        match wire::parse_request(entry.get()) {
            Ok(request) => match begin(gateway, state, request) {
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
    fn send_event(&self, _: &RequestId, _: bool, _: &'static str, _: Value) {}
}

/// Starts one request. Handlers that answer from memory reply at once, and so does a future
/// that is done on its first poll; the others are returned to wait in `inflight`.
fn begin<'g>(
    gateway: &'g Gateway,
    state: &Arc<ConnectionState>,
    request: wire::Request<'_>,
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
    let started = std::time::Instant::now();
    let reply = match flynn_protocol::dispatch(gateway, call, method, params) {
        Dispatched::Ready(reply) => {
            let text = reply_frame(reply, &id, jsonrpc, method, started);
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
        started,
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
    started: std::time::Instant,
) -> String {
    crate::metrics::get().request(method, reply.is_ok(), started.elapsed());
    reply.unwrap_or_else(|error| {
        if error.code == ErrorCode::InternalError.code() {
            tracing::warn!(method = method.name(), error = %error.message, "internal error");
        }
        wire::error_reply(Some(id), jsonrpc, &error)
    })
}

/// A started request: resolves to its reply frame, the result or the handler's error (`None`
/// for a notification).
struct PendingReply<'g> {
    id: RequestId,
    jsonrpc: bool,
    method: Method,
    reply: ReplyFuture<'g>,
    notification: bool,
    /// When the request arrived (for the latency metric).
    started: std::time::Instant,
}

impl Future for PendingReply<'_> {
    type Output = Option<String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = &mut *self;
        this.reply.as_mut().poll(cx).map(|reply| {
            let text = reply_frame(reply, &this.id, this.jsonrpc, this.method, this.started);
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
struct BatchReply<'g> {
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
enum Inflight<'g> {
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
