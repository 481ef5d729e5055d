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

/// The largest buffer of frames a connection keeps between batches (see
/// [`EventQueue::written`]): a full gathering's worth (`COALESCE_ENOUGH` in `serve.rs`), as
/// the queue kept before it was taken in batches.
const KEEP_FRAMES: usize = 64;

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
        // `queued`, not `frames.len()`: frames the writer took out and has not written yet
        // still count against the bound (see `take_all`).
        if self.queued.load(Ordering::Acquire) >= self.capacity {
            return Err(QueueFull::Full);
        }
        frames.push_back(frame);
        self.queued.fetch_add(1, Ordering::Release);
        drop(frames);
        self.ready.ring();
        Ok(())
    }

    /// Takes every queued frame, oldest first, under one lock (a lock per frame cost about a
    /// hundred instructions per streamed event). The frames still count as queued until the
    /// writer hands the batch back ([`EventQueue::written`]): a writer blocked in the middle
    /// of a batch holds the queue to its bound as it did frame by frame (stricter by the
    /// frames of the batch already written, at most one batch).
    pub(super) fn take_all(&self) -> VecDeque<Outbound> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return VecDeque::new();
        }
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *frames)
    }

    /// The writer wrote `count` frames of a batch from [`EventQueue::take_all`]; `batch` is its
    /// emptied buffer. The buffer goes back to the queue when the queue has none, cut down to
    /// [`KEEP_FRAMES`], so a streaming connection does not grow a new one from nothing for
    /// every batch (five reallocations and copies per 64 events); a connection that never had
    /// events holds none, and one that had some keeps at most what the old one-by-one queue
    /// kept.
    pub(super) fn written(&self, count: usize, mut batch: VecDeque<Outbound>) {
        if count > 0 {
            self.queued.fetch_sub(count, Ordering::Release);
        }
        if batch.capacity() == 0 {
            return;
        }
        batch.clear();
        // Empty, so nothing is copied: the allocators shrink a block in place.
        batch.shrink_to(KEEP_FRAMES);
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        if frames.capacity() == 0 {
            *frames = batch;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: i64) -> Outbound {
        Outbound::Event {
            id: RequestId::Number(n),
            jsonrpc: false,
            event: "content",
            data: EventJson::one_string_member("text", "x"),
            run: None,
        }
    }

    fn ids(batch: &VecDeque<Outbound>) -> Vec<i64> {
        batch
            .iter()
            .map(|Outbound::Event { id, .. }| match id {
                RequestId::Number(n) => *n,
                RequestId::String(_) => -1,
            })
            .collect()
    }

    #[test]
    fn a_batch_taken_out_counts_against_the_bound_until_written_and_its_buffer_is_kept() {
        let queue = EventQueue::new(4);
        assert!(queue.take_all().is_empty());
        for n in 0..4 {
            assert!(queue.push(frame(n)).is_ok());
        }
        assert!(matches!(queue.push(frame(9)), Err(QueueFull::Full)));
        let mut batch = queue.take_all();
        assert_eq!(ids(&batch), [0, 1, 2, 3]);
        // Taken out, not yet written: the bound still holds.
        assert_eq!(queue.len(), 4);
        assert!(matches!(queue.push(frame(9)), Err(QueueFull::Full)));
        batch.clear();
        queue.written(4, batch);
        assert_eq!(queue.len(), 0);
        // The emptied buffer went back to the queue: the next frames need no new one.
        let kept = queue
            .frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity();
        assert!(kept >= 4, "the batch's buffer was not kept: {kept}");
        assert!(queue.push(frame(4)).is_ok());
        assert_eq!(ids(&queue.take_all()), [4]);
    }

    #[test]
    fn a_large_batch_buffer_is_cut_down_before_it_is_kept() {
        let queue = EventQueue::new(1024);
        for n in 0..300 {
            assert!(queue.push(frame(n)).is_ok());
        }
        let mut batch = queue.take_all();
        assert_eq!(batch.len(), 300);
        batch.clear();
        queue.written(300, batch);
        let kept = queue
            .frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity();
        assert!(
            kept <= KEEP_FRAMES,
            "a burst's buffer was kept whole: {kept}"
        );
    }
}
