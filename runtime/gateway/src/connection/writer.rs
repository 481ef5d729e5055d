//! Writing to a connection. Frames are fed into the sink and flushed once per wakeup, not once
//! per frame: a flush per frame costs several times the throughput. Events are numbered with
//! the connection's `seq` as they are written, and a request's events go out ahead of its
//! reply.
//!
//! Every write returns `ControlFlow`: `Break` carries why the connection ended (the peer is
//! gone, stopped reading, or the connection was closed on the way).

use std::ops::ControlFlow::{self, Break, Continue};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::close::{Socket, answer_close, close_socket};
use super::state::ConnectionState;

/// Why a connection ended.
#[derive(Debug)]
pub(super) enum Ended {
    PeerClosed,
    Closed(u16),
    Broken,
    /// The peer stopped reading: a write made no progress for `WriteLimits::stall`.
    Stalled,
}

/// How long writes may wait for a peer that does not read (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteLimits {
    /// How long one write may make no progress before the peer is given up
    /// (`server.write_stall_timeout_ms`).
    pub(super) stall: Duration,
    /// How long a close frame may take to reach the peer (`server.close_delivery_timeout_ms`).
    pub(super) close_delivery: Duration,
}

/// The close reason for a connection whose events overflowed its queue.
pub(super) const SLOW_CONSUMER: &str = "slow consumer: events were not read fast enough";

/// The writing side of a connection's socket (the loop reads from the same, unsplit socket:
/// see [`Writer::socket`]).
pub(super) struct Writer<'c> {
    ws: Socket,
    state: &'c ConnectionState,
    /// The number of the last event written.
    seq: u64,
    limits: WriteLimits,
    /// Event frames were fed since the last flush (counted in `flynn_event_writes_total`).
    events_fed: bool,
    /// See [`Writer::arm_read`].
    read_armed: bool,
}

/// One write that may have to wait.
#[derive(Clone, Copy)]
enum Write {
    /// Room in the sink for one more frame.
    Room,
    Flush,
}

impl Write {
    fn poll(self, ws: &mut Socket, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self {
            Write::Room => ws.poll_ready_unpin(cx),
            Write::Flush => ws.poll_flush_unpin(cx),
        }
    }
}

impl<'c> Writer<'c> {
    pub(super) fn new(ws: Socket, state: &'c ConnectionState, limits: WriteLimits) -> Self {
        Self {
            ws,
            state,
            seq: 0,
            limits,
            events_fed: false,
            read_armed: false,
        }
    }

    /// The socket, for reading. One socket for both directions, unsplit (a split would put it
    /// behind a lock): the loop reads from it only while it waits, never during a write.
    pub(super) fn socket(&mut self) -> &mut Socket {
        &mut self.ws
    }

    /// The loop's last read found the socket empty, polled with this task's waker (and with coop
    /// budget left, so the poll did register it): the socket's read side (tokio-tungstenite's
    /// read slots, the TCP readiness, the inbound budget's semaphore and stall timer) holds the
    /// task's waker, and whatever arrives from now on wakes the task. The loop's next wait may
    /// then skip its first poll of the socket ([`Writer::take_read_armed`]), as long as the
    /// task has not given way in between: a wakeup that came while it waited elsewhere would
    /// have been used up by that wait, and the skipped poll was the one to find the message.
    /// Between the read and the wait the loop only writes, and a write gives way only in
    /// [`Writer::wait`], which disarms. (Writes never touch the read slots: tokio-tungstenite
    /// registers their wakers in slots of their own.)
    pub(super) fn arm_read(&mut self) {
        self.read_armed = true;
    }

    /// Whether the last read left the task's waker with the socket and the task has not given
    /// way since (see [`Writer::arm_read`]); disarms.
    pub(super) fn take_read_armed(&mut self) -> bool {
        std::mem::take(&mut self.read_armed)
    }

    /// Writes a message without flushing: waits for room (rarely), then hands it to tungstenite.
    pub(super) async fn feed(&mut self, message: Message) -> ControlFlow<Ended> {
        self.write(Write::Room).await?;
        if self.ws.start_send_unpin(message).is_err() {
            return Break(Ended::Broken);
        }
        Continue(())
    }

    /// Writes every event already queued. Called before each reply: a request's events are
    /// queued before its reply completes, so this keeps them ahead of it on the wire.
    /// Takes them all under one lock ([`EventQueue::take_all`]), and once more in case more
    /// came while they were written.
    ///
    /// [`EventQueue::take_all`]: super::state::EventQueue::take_all
    pub(super) async fn feed_events(&mut self) -> ControlFlow<Ended> {
        loop {
            let mut batch = self.state.events.take_all();
            if batch.is_empty() {
                return Continue(());
            }
            let count = batch.len();
            while let Some(out) = batch.pop_front() {
                self.seq += 1;
                self.events_fed = true;
                // On `Break` the connection ends, and its queue with it: the count no longer
                // matters.
                match self.feed_at_once(out.encode(self.seq)) {
                    Ok(flow) => flow?,
                    Err(text) => self.feed(Message::text(text)).await?,
                }
            }
            self.state.events.written(count, batch);
        }
    }

    /// [`Writer::feed`] of the text frame `text` when the sink has room now (nearly always): no
    /// future built and polled per frame (about 130 instructions per streamed event). Gives
    /// the text back when the write would have to wait.
    fn feed_at_once(&mut self, text: String) -> Result<ControlFlow<Ended>, String> {
        match Write::Room.poll(&mut self.ws, &mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Ok(match self.ws.start_send_unpin(Message::text(text)) {
                Ok(()) => Continue(()),
                Err(_) => Break(Ended::Broken),
            }),
            Poll::Ready(Err(_)) => Ok(Break(Ended::Broken)),
            Poll::Pending => Err(text),
        }
    }

    /// [`Writer::reply`] without waiting and without an async layer, when nothing is in its
    /// way (nearly always): no events queued to go ahead of it, no close asked for, room in the
    /// sink. Gives the text back otherwise, for `reply`. (A handler that asks for a close has
    /// asked by the time its reply is written.) The async layers cost about 4 % of a
    /// `system.info` request with 16 in flight (BENCHMARKS.md, finding 35).
    pub(super) fn try_reply(&mut self, text: String) -> Result<ControlFlow<Ended>, String> {
        if self.state.events.len() != 0 || self.state.close_requested() {
            return Err(text);
        }
        self.feed_at_once(text)
    }

    /// Writes a reply: its events first, then the reply, then a close the handler asked for
    /// (`system.disconnect`).
    pub(super) async fn reply(&mut self, text: String) -> ControlFlow<Ended> {
        self.feed_events().await?;
        self.feed(Message::text(text)).await?;
        match self.state.take_close_request() {
            None => Continue(()),
            Some((code, reason)) => {
                self.flush_before_close().await;
                Break(self.close(code, reason).await)
            }
        }
    }

    /// Sends what was fed.
    pub(super) async fn flush(&mut self) -> ControlFlow<Ended> {
        if std::mem::take(&mut self.events_fed) {
            crate::metrics::get().event_write();
        }
        self.write(Write::Flush).await
    }

    /// Writes out what is buffered before a close, bounded by `WriteLimits::stall`.
    pub(super) async fn flush_before_close(&mut self) {
        let _ = Box::pin(tokio::time::timeout(self.limits.stall, self.ws.flush())).await;
    }

    /// Sends a close frame, waits (bounded) for the peer's answer: the connection has ended.
    /// The rare paths (closing, waiting on a blocked write) run in boxed futures: inline, their
    /// timers would widen every idle connection's future (BENCHMARKS.md, finding 3).
    pub(super) async fn close(&mut self, code: u16, reason: String) -> Ended {
        Box::pin(close_socket(
            &mut self.ws,
            code,
            reason,
            self.limits.close_delivery,
        ))
        .await;
        Ended::Closed(code)
    }

    /// The peer sent a close frame: sends tungstenite's answer; the connection has ended.
    pub(super) async fn answer_close(&mut self) -> Ended {
        Box::pin(answer_close(&mut self.ws, self.limits.close_delivery)).await;
        Ended::PeerClosed
    }

    /// Runs one write (a wait for room, or a flush). Most writes complete at once and pay for
    /// nothing more; one that has to wait is guarded (see [`Writer::wait`]).
    async fn write(&mut self, write: Write) -> ControlFlow<Ended> {
        match std::future::poll_fn(|cx| write.poll(&mut self.ws, cx)).now_or_never() {
            Some(Ok(())) => Continue(()),
            Some(Err(_)) => Break(Ended::Broken),
            None => self.wait(write).await,
        }
    }

    /// A write that has to wait. A peer that stops reading fills the socket and would park this
    /// task in the write, so the write gives way when the connection is flagged as a slow
    /// consumer (close 1008), and a write that makes no progress for `WriteLimits::stall` drops
    /// it.
    async fn wait(&mut self, write: Write) -> ControlFlow<Ended> {
        // The task may give way here (see `arm_read`).
        self.read_armed = false;
        let ws = &mut self.ws;
        let blocked = std::future::poll_fn(|cx| write.poll(ws, cx));
        let stall = self.limits.stall;
        let waited = Box::pin(wait_for_write(blocked, &self.state.wake, stall)).await;
        match waited {
            Waited::Written => Continue(()),
            Waited::Broken => Break(Ended::Broken),
            Waited::Stalled => Break(Ended::Stalled),
            Waited::SlowConsumer => Break(self.close(1008, SLOW_CONSUMER.into()).await),
        }
    }
}

/// How a write that could not complete at once ended.
enum Waited {
    Written,
    Broken,
    /// No progress for `WriteLimits::stall`: the peer stopped reading.
    Stalled,
    /// The connection was flagged as a slow consumer meanwhile.
    SlowConsumer,
}

/// Waits for a blocked write. The wait gives way when the connection is flagged as a slow
/// consumer (`wake` is only notified then), and a write that makes no progress for
/// `stall` is given up.
async fn wait_for_write<W>(write: W, wake: &Notify, stall: Duration) -> Waited
where
    W: Future<Output = Result<(), WsError>>,
{
    tokio::select! {
        biased;
        written = tokio::time::timeout(stall, write) => match written {
            Ok(Ok(())) => Waited::Written,
            Ok(Err(_)) => Waited::Broken,
            Err(_) => Waited::Stalled,
        },
        _ = wake.notified() => Waited::SlowConsumer,
    }
}
