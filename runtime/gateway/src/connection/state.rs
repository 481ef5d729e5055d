//! Per-connection state shared with handlers (as `Call::connection`) and runs: who the peer is,
//! the attached session, the queue of events waiting for the writer, and the flags the
//! connection's loop reads (slow consumer, a close a handler asked for).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flynn_protocol::wire::{self, EventJson, EventSink, RequestId};
use tokio::sync::Notify;

use super::doorbell::Doorbell;
use crate::auth::Identity;

/// Events waiting for the connection's writer: bounded by `server.outbound_buffer_frames`, and
/// allocating only while frames wait (a channel would pre-allocate a block per idle connection).
pub struct EventQueue {
    frames: Mutex<VecDeque<Outbound>>,
    /// How many frames wait: lets the writer skip the lock when there are none (the usual
    /// case, checked before every reply).
    pub(super) queued: AtomicUsize,
    capacity: usize,
    /// Rung when a frame is queued, and when the connection turns out a slow consumer.
    pub(super) ready: Doorbell,
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
            frames: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
            ready: Doorbell::default(),
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
        self.ready.ring();
        Ok(())
    }

    pub(super) fn try_pop(&self) -> Option<Outbound> {
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

    /// How many frames may wait before the connection is a slow consumer.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many frames wait.
    pub(super) fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Frames from outside the connection's task (events of runs) waiting to be written.
pub enum Outbound {
    Event {
        id: RequestId,
        jsonrpc: bool,
        event: &'static str,
        /// Encoded once for every connection and kept copy of the event: copied into the frame.
        data: EventJson,
        /// The turn the event belongs to (`runId` / `runSeq` frame members).
        run: Option<wire::RunTag>,
    },
}

impl Outbound {
    /// The frame's text, numbered with the connection's `seq`.
    pub(super) fn encode(self, seq: u64) -> String {
        match self {
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
}

/// Per-connection state, shared with handlers (as `Call::connection`) and runs.
pub struct ConnectionState {
    /// Shared, not copied, into the results that name it (`system.info`).
    pub id: Arc<str>,
    pub peer: SocketAddr,
    /// Who authenticated the connection, and so which scopes it holds.
    pub identity: Identity,
    /// The session this connection is attached to (`ws:<connectionId>` until `sessions.create`).
    /// Shared, not copied, into the results that name it (`system.info`).
    session: Mutex<Arc<str>>,
    pub(super) events: EventQueue,
    /// Set when the outbound queue overflowed: the connection is closed with 1008.
    slow: AtomicBool,
    /// Notified (once) when the connection turns out a slow consumer: reaches a writer blocked
    /// in a write.
    pub(super) wake: Notify,
    /// Close requested by a handler (`system.disconnect`), applied after its reply is written.
    close_request: Mutex<Option<(u16, String)>>,
    /// Whether `close_request` holds one: checked after every reply without taking the lock.
    close_requested: AtomicBool,
}

impl ConnectionState {
    /// A new connection's state, attached to its own `ws:<id>` session. Public for the
    /// in-process dispatch of the tests (`flynn_test_support::gateway`), whose connections have
    /// no socket.
    pub fn new(id: String, peer: SocketAddr, identity: Identity, capacity: usize) -> Self {
        Self {
            session: Mutex::new(format!("ws:{id}").into()),
            id: id.into(),
            peer,
            identity,
            events: EventQueue::new(capacity),
            slow: AtomicBool::new(false),
            wake: Notify::new(),
            close_request: Mutex::new(None),
            close_requested: AtomicBool::new(false),
        }
    }

    /// The attached session id.
    pub fn session_id(&self) -> String {
        self.session_shared().to_string()
    }

    /// The attached session id, shared (no copy of the text).
    pub fn session_shared(&self) -> Arc<str> {
        self.session
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn attach(&self, session_id: &str) {
        let session_id: Arc<str> = session_id.into();
        match self.session.lock() {
            Ok(mut s) => *s = session_id,
            Err(p) => *p.into_inner() = session_id,
        }
    }

    /// Whether `session_id` is this connection's own `ws:<id>` session.
    pub fn owns_session(&self, session_id: &str) -> bool {
        session_id
            .strip_prefix("ws:")
            .is_some_and(|rest| rest == &*self.id)
    }

    /// Asks the connection to close with `code` once the current reply is written.
    pub fn request_close(&self, code: u16, reason: &str) {
        if let Ok(mut c) = self.close_request.lock() {
            *c = Some((code, reason.to_owned()));
            self.close_requested.store(true, Ordering::Release);
        }
    }

    /// Whether a close was asked for and not yet taken (one load; see `take_close_request`).
    pub(super) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    pub(super) fn take_close_request(&self) -> Option<(u16, String)> {
        // A plain load first: the swap is a locked instruction, and this runs after every reply.
        if !self.close_requested.load(Ordering::Acquire)
            || !self.close_requested.swap(false, Ordering::AcqRel)
        {
            return None;
        }
        self.close_request.lock().ok().and_then(|mut c| c.take())
    }

    /// Whether the outbound queue overflowed (the connection is then closed with 1008).
    pub(super) fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }

    /// Whether the connection is still open for events.
    pub fn is_open(&self) -> bool {
        !self.events.closed.load(Ordering::Acquire)
    }

    fn push_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: EventJson,
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
                self.events.ready.ring();
            }
        }
    }
}

/// The registry's view of a live connection (`crate::connections`).
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

    /// Through the events' notifier: the loop waits on it in every round anyway.
    fn wake(&self) {
        self.events.ready.ring();
    }
}

impl EventSink for ConnectionState {
    fn send_event(&self, id: &RequestId, jsonrpc: bool, event: &'static str, data: EventJson) {
        self.push_event(id, jsonrpc, event, data, None);
    }

    fn send_run_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: EventJson,
        run: wire::RunTag,
    ) {
        self.push_event(id, jsonrpc, event, data, Some(run));
    }
}
