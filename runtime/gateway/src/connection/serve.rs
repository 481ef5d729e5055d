//! The connection's loop, a small state machine. Each round waits for one thing (the
//! drain deadline, queued events, a finished request, incoming frames, the ping timer) and
//! handles it, then writes everything else that is ready and flushes once. Every step returns
//! `ControlFlow`: `Break` ends the connection, with why.

use std::ops::ControlFlow::{self, Break, Continue};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::close::{Socket, failure_close};
use super::dispatch::{Burst, Incoming, Inflight, incoming};
use super::ping::PingTimer;
use super::service::ConnectionService;
use super::state::{ConnectionState, EventQueue};
use super::writer::{Ended, SLOW_CONSUMER, WriteLimits, Writer};

/// Events already queued that make a write worth doing without waiting for more (see
/// [`Serving::on_events`]); at most half the queue's bound, so waiting never overflows it.
/// 64 rather than 16: with 50 answers streaming, 16-25 % less CPU per event for a first event
/// 3-9 ms later (BENCHMARKS.md, "Round 4 merged"); a lone event still leaves after two quiet
/// rounds.
const COALESCE_ENOUGH: usize = 64;
/// Scheduler rounds in a row that must bring this connection no new event before what is
/// queued is written (see [`gathered`]).
const QUIET_ROUNDS: u8 = 2;
/// How long in-flight requests may run on after shutdown begins.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Frames handled in one round (the first and those already buffered) before writing.
const READ_BURST: usize = 64;
/// Pings in a row the peer may leave unanswered; at the next tick it is given up (1008).
const PINGS_UNANSWERED: u32 = 2;
const SHUTTING_DOWN: &str = "gateway shutting down";

/// What a round of the loop woke for.
enum Wake {
    Shutdown,
    DrainDeadline,
    Events,
    /// A request finished: its reply (`None` for a notification).
    Reply(Option<String>),
    Message(Option<Result<Message, WsError>>),
    Ping,
    /// Gathering ended: the events waiting are written now.
    Gathered,
}

/// What became of one incoming message, and what is left to do that may have to wait.
enum Handled {
    Done(ControlFlow<Ended>),
    /// A reply that could not be written at once (`Writer::try_reply`).
    Reply(String),
    /// The peer's close frame, to answer.
    Close,
    ReadFailed(WsError),
}

/// Events queued and not yet written, waiting for the events that are ready with them.
struct Gathering {
    /// How many were queued at the last look.
    queued: usize,
    /// Rounds in a row that brought none.
    quiet: u8,
}

/// The loop's state between rounds.
struct Serving<'c, S> {
    service: &'c S,
    state: &'c Arc<ConnectionState>,
    writer: Writer<'c>,
    /// Requests whose handlers are still running, inside the connection's task.
    inflight: FuturesUnordered<Inflight<'c>>,
    unanswered_pings: u32,
    /// Events wait for more before their write (see [`Serving::on_events`]).
    gathering: Option<Gathering>,
    /// Shutdown began: the connection stops reading, lets in-flight requests finish (bounded
    /// by `DRAIN_LIMIT`) so each gets its terminal reply, then closes with 1001.
    draining: bool,
}

/// Serves one connection until it ends.
pub(super) async fn serve<S: ConnectionService>(
    service: &S,
    ws: Socket,
    state: &Arc<ConnectionState>,
    ping_every: Duration,
    limits: WriteLimits,
    shutdown: CancellationToken,
) -> Ended {
    let mut serving = Serving {
        service,
        state,
        writer: Writer::new(ws, state, limits),
        inflight: FuturesUnordered::new(),
        unanswered_pings: 0,
        gathering: None,
        draining: false,
    };
    let mut ping = PingTimer::new(ping_every);
    // Futures the loop waits on in every round are made once, not per round: each would
    // register with (and then leave) its notifier's waiter list, under a lock, every time.
    let events_ready = state.events.ready.notified();
    tokio::pin!(events_ready);
    let mut events_armed = false;
    // Made only once shutdown begins: inline, a `Sleep` would widen every idle connection.
    let mut drain_deadline: Option<Pin<Box<Sleep>>> = None;
    // Shutdown is not a branch of the wait: the gateway wakes every registered connection
    // through `events_ready` when it begins (`Connections::wake_all`), and the token is looked
    // at then, and here once (this connection registered before, so it is either woken or
    // sees the token cancelled now).
    if shutdown.is_cancelled() {
        serving.draining = true;
        drain_deadline = Some(Box::pin(tokio::time::sleep(DRAIN_LIMIT)));
    }
    loop {
        if let Break(ended) = serving.before_wait().await {
            return ended;
        }
        let draining = serving.draining;
        // While gathering, new events do not wake the task (one wakeup per event is what
        // gathering saves): the round's end does, and the notification left meanwhile fires
        // at once when gathering ends.
        let gathering = serving.gathering.is_some();
        let enough = serving.enough();
        let read_armed = serving.skip_socket_poll();
        // The branches after `gathered` are polled on the wait's first poll only (see it).
        let first_poll = AtomicBool::new(true);
        let wake = tokio::select! {
            biased;
            _ = poll_deadline(&mut drain_deadline), if draining => Wake::DrainDeadline,
            () = state.events.ready.rung(events_ready.as_mut(), &mut events_armed), if !gathering => {
                events_ready.set(state.events.ready.notified());
                if !draining && shutdown.is_cancelled() {
                    Wake::Shutdown
                } else {
                    Wake::Events
                }
            }
            // Ahead of the socket and the rest; all the rounds inside this one wait.
            () = gathered(&state.events, enough, &mut serving.gathering, &first_poll), if gathering => {
                Wake::Gathered
            }
            Some(reply) = on_first_poll(&first_poll, serving.inflight.next()), if !serving.inflight.is_empty() => {
                Wake::Reply(reply)
            }
            message = on_first_poll(&first_poll, next_message(serving.writer.socket(), read_armed)), if !draining => {
                Wake::Message(message)
            }
            () = on_first_poll(&first_poll, ping.tick()) => Wake::Ping,
        };
        if let Wake::Shutdown = wake {
            drain_deadline = Some(Box::pin(tokio::time::sleep(DRAIN_LIMIT)));
        }
        if let Break(ended) = serving.on_wake(wake).await {
            return ended;
        }
        if let Break(ended) = serving.write_ready().await {
            return ended;
        }
    }
}

/// Lets scheduler rounds pass while events are gathered, until they should be written. The
/// rounds' order among tasks varies (tokio runs deferred tasks in no fixed order, and also
/// every 61 ticks), so a run that adds an event each round may come after this task in one
/// round and before it in the next: gathering ends after `QUIET_ROUNDS` rounds in a row
/// without a new event, or when `enough` are queued.
/// The rounds are polls of the loop's one `select!`, which would poll every branch again each
/// round: the socket (most of the task's cost per round), the ping timer, the in-flight
/// requests. `first_poll` is cleared after the first round, so they are polled on the wait's
/// first poll only (their wakers stay registered); what they bring waits for the gathering's
/// end, a few rounds. Reading never stops for longer: each gathering polls them once.
async fn gathered(
    queue: &EventQueue,
    enough: usize,
    gathering: &mut Option<Gathering>,
    first_poll: &AtomicBool,
) {
    while let Some(g) = gathering.as_mut() {
        tokio::task::yield_now().await;
        first_poll.store(false, Ordering::Relaxed);
        let queued = queue.len();
        if queued == 0 || queued >= enough {
            return;
        }
        if queued > g.queued {
            *g = Gathering { queued, quiet: 0 };
        } else {
            g.quiet += 1;
            if g.quiet >= QUIET_ROUNDS {
                return;
            }
        }
    }
}

/// The next incoming message. When `armed`, the first poll is skipped: the read burst's last
/// poll found the socket empty moments ago in this same run of the task, leaving the task's
/// waker with it (see `Writer::arm_read` for why none can have been used up since), so a poll
/// now (about 650 instructions through tungstenite and the inbound budget) would only find it
/// empty again. A message that arrives from then on wakes the task, and the task's next run
/// polls this same future again, for real. The skipped poll must be in the same run as the
/// read: in a later one, the wakeup that started the run may be the socket's, already used.
/// Inside `on_first_poll`, a skipped poll can only be a wait's first poll, so it holds there too.
fn next_message(
    socket: &mut Socket,
    armed: bool,
) -> impl Future<Output = Option<Result<Message, WsError>>> + '_ {
    let mut skip = armed;
    std::future::poll_fn(move |cx| {
        if std::mem::take(&mut skip) {
            return Poll::Pending;
        }
        socket.poll_next_unpin(cx)
    })
}

/// `future`, polled only while `first_poll` holds (see [`gathered`]); pending after that.
fn on_first_poll<'a, F: Future + Unpin + 'a>(
    first_poll: &'a AtomicBool,
    mut future: F,
) -> impl Future<Output = F::Output> + 'a {
    std::future::poll_fn(move |cx| {
        if first_poll.load(Ordering::Relaxed) {
            future.poll_unpin(cx)
        } else {
            Poll::Pending
        }
    })
}

/// Waits for the drain deadline once it is set; never completes before.
fn poll_deadline(deadline: &mut Option<Pin<Box<Sleep>>>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match deadline {
        Some(sleep) => sleep.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

impl<'c, S: ConnectionService> Serving<'c, S> {
    /// Whether the coming wait may skip its first socket poll (`next_message`). Only if
    /// `select!` polls its branches in this same run of the task: it first yields when the
    /// task's coop budget is spent, and the skip would then fall in a later run, after the
    /// wakeup it relies on may have come and gone.
    fn skip_socket_poll(&mut self) -> bool {
        self.writer.take_read_armed() && tokio::task::coop::has_budget_remaining()
    }

    /// Ends the connection before waiting when it fell behind its events (1008), or when it is
    /// draining and nothing is left in flight (its events out, then 1001).
    async fn before_wait(&mut self) -> ControlFlow<Ended> {
        if self.state.is_slow() {
            return Break(self.writer.close(1008, SLOW_CONSUMER.into()).await);
        }
        if self.draining && self.inflight.is_empty() {
            self.writer.feed_events().await?;
            self.writer.flush_before_close().await;
            return Break(self.writer.close(1001, SHUTTING_DOWN.into()).await);
        }
        Continue(())
    }

    async fn on_wake(&mut self, wake: Wake) -> ControlFlow<Ended> {
        match wake {
            Wake::Shutdown => {
                self.draining = true;
                Continue(())
            }
            Wake::DrainDeadline => Break(self.writer.close(1001, SHUTTING_DOWN.into()).await),
            // The events themselves are written with everything else that is ready.
            Wake::Events => self.on_events().await,
            Wake::Reply(Some(text)) => self.writer.reply(text).await,
            Wake::Reply(None) => Continue(()),
            Wake::Message(message) => self.on_messages(message).await,
            Wake::Ping => self.on_ping().await,
            Wake::Gathered => {
                self.gathering = None;
                Continue(())
            }
        }
    }

    /// Events were queued. Coalescing: a run emits one event per model chunk, and writing
    /// each at once costs a write(2) and a wakeup of this task per event. Unless enough are
    /// queued already, the events wait while the tasks that are ready run (this connection's
    /// runs among them): the loop keeps reading and answering meanwhile, and writes once
    /// scheduler rounds go by without new events ([`gathered`]). No timer: on an idle
    /// runtime a round ends at once, so a lone event is not held back.
    async fn on_events(&mut self) -> ControlFlow<Ended> {
        if self.state.is_slow() {
            return Break(self.writer.close(1008, SLOW_CONSUMER.into()).await);
        }
        let queued = self.state.events.len();
        if queued > 0 && queued < self.enough() {
            self.gathering = Some(Gathering { queued, quiet: 0 });
        }
        Continue(())
    }

    /// The events queued that make a write worth doing now: never more than half the queue's
    /// bound, so a run streaming while the connection waits does not make it a slow consumer.
    fn enough(&self) -> usize {
        COALESCE_ENOUGH.min(self.state.events.capacity() / 2).max(1)
    }

    /// This message and every frame already buffered (up to `READ_BURST`), before writing
    /// anything.
    /// (One async layer, no helpers awaited in between: each layer would widen the
    /// connection's future, which every idle connection pays for.)
    async fn on_messages(&mut self, first: Option<Result<Message, WsError>>) -> ControlFlow<Ended> {
        let mut burst = Burst::begin();
        let mut next = Some(first);
        let mut budget = READ_BURST;
        let mut flow = Continue(());
        while let Some(message) = next.take() {
            // Handled without an async layer; only what must wait is awaited here.
            flow = match self.on_message(message, &mut burst) {
                Handled::Done(flow) => flow,
                Handled::Reply(text) => self.writer.reply(text).await,
                Handled::Close => Break(self.writer.answer_close().await),
                Handled::ReadFailed(error) => Break(self.read_failed(error).await),
            };
            budget -= 1;
            if flow.is_break() || budget == 0 {
                break;
            }
            // With this task's waker, not a no-op one: when the socket is empty, the waker stays
            // with it, and the loop's next wait skips its first poll (`Writer::arm_read`).
            let socket = self.writer.socket();
            next = match std::future::poll_fn(|cx| Poll::Ready(socket.poll_next_unpin(cx))).await {
                Poll::Ready(message) => Some(message),
                Poll::Pending => {
                    // A poll without coop budget returns `Pending` having registered nothing.
                    if tokio::task::coop::has_budget_remaining() {
                        self.writer.arm_read();
                    }
                    None
                }
            };
        }
        burst.record();
        flow
    }

    /// One incoming message: answered at once, or its handler left running in `inflight`;
    /// what has to wait (a reply that cannot be written at once, a close) is left to the caller.
    fn on_message(
        &mut self,
        message: Option<Result<Message, WsError>>,
        burst: &mut Burst,
    ) -> Handled {
        let message = match message {
            None => return Handled::Done(Break(Ended::PeerClosed)),
            Some(Err(error)) => return Handled::ReadFailed(error),
            Some(Ok(message)) => message,
        };
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            self.writer.socket().get_mut().message_done();
        }
        match incoming(self.service, self.state, message, &mut self.inflight, burst) {
            Incoming::Reply(text) => match self.writer.try_reply(text) {
                Ok(flow) => Handled::Done(flow),
                Err(text) => Handled::Reply(text),
            },
            Incoming::Pong => {
                self.unanswered_pings = 0;
                Handled::Done(Continue(()))
            }
            Incoming::Close => Handled::Close,
            Incoming::Nothing => Handled::Done(Continue(())),
        }
    }

    /// A read failed: RFC 6455 section 7.1.7, fail the connection with the code that says why
    /// (when there is one; otherwise the connection is simply gone).
    async fn read_failed(&mut self, error: WsError) -> Ended {
        debug!(error = %error, "websocket read failed");
        match failure_close(&error) {
            Some((code, reason)) => self.writer.close(code, reason).await,
            None => Ended::Broken,
        }
    }

    async fn on_ping(&mut self) -> ControlFlow<Ended> {
        if self.unanswered_pings >= PINGS_UNANSWERED {
            return Break(self.writer.close(1008, "no pong to two pings".into()).await);
        }
        self.unanswered_pings += 1;
        self.writer.feed(Message::Ping(Default::default())).await
    }

    /// Everything else that is ready goes into the same flush. Events first: a request's
    /// events are queued before its reply completes, and must reach the wire before it.
    /// Events being gathered wait, unless a reply takes them out ahead of itself.
    async fn write_ready(&mut self) -> ControlFlow<Ended> {
        if self.gathering.is_none() {
            self.writer.feed_events().await?;
        }
        // An empty `FuturesUnordered` costs a poll too (most rounds at one request in flight).
        while !self.inflight.is_empty()
            && let Some(Some(reply)) = self.inflight.next().now_or_never()
        {
            if let Some(text) = reply {
                self.writer.reply(text).await?;
            }
        }
        if self.gathering.is_some() && self.state.events.len() == 0 {
            self.gathering = None;
        }
        self.writer.flush().await
    }
}
