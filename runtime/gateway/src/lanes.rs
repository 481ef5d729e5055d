//! One lane per session: at most one run at a time per session, runs of different sessions in
//! parallel. While a run is active, a new message is handled by the session's queue mode
//! (the README's "Queue modes", and `agent.send` in the spec):
//!
//! - `followup`: queued; each queued message is its own turn, FIFO, after the debounce window.
//! - `collect`: queued; when the lane frees, all queued messages become one turn.
//! - `steer`: injected into the active run before its next model call; if the run can no longer
//!   take it, it falls back to `followup`. Its requester gets the run's reply, marked steered.
//! - `steer_backlog`: steered as above and also queued as a followup turn (which replies).
//! - `interrupt`: the active run is cancelled at its next safe point, older queued messages are
//!   superseded, the newest runs next.
//!
//! `cap` bounds the queue; `overflow` drops the oldest or the newest; with `summarizeOverflow`
//! dropped messages survive as one-line summaries injected into the next turn. Every rejected or
//! superseded request gets an `error` event with code 3 and `data.queue`, then its error reply.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use flynn_protocol::types::{AgentSendResult, ContentEventData, ErrorEventData, QueueRejection};
use flynn_protocol::wire::{EventEmitter, RpcError};
use flynn_protocol::{EmitEvents as _, ErrorCode};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::{Overflow, QueueMode, QueuePolicy};
use crate::gateway::Gateway;
pub use crate::runs::Reply;

/// An inbound user message.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub text: String,
    pub attachments: Vec<flynn_protocol::types::Attachment>,
    /// The requester holds the `operator` scope: a turn may call tools only when every
    /// message it answers may (decision scopes).
    pub may_use_tools: bool,
    /// Who sent it (a token's name, a Tailscale login), shown in presence; never a secret.
    pub sender_name: Option<String>,
    /// The sender's id in presence when it is not the session's user part (a chat channel's
    /// sender in a group conversation); `None`: the session's user part.
    pub presence_sender: Option<String>,
}

/// Who waits for a turn's outcome.
pub struct Requester {
    pub events: EventEmitter,
    pub reply: oneshot::Sender<Reply>,
    /// Joined the run by steering: the reply is the run's, marked `steered`.
    pub steered: bool,
    /// The request's `idempotencyKey`: repeats of it follow the turn that answers it.
    pub key: Option<String>,
}

/// A message waiting in the lane.
pub struct Pending {
    pub message: UserMessage,
    pub requester: Requester,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    Interrupted,
    /// The gateway is shutting down.
    Shutdown,
}

/// The run currently executing in a lane, as seen from outside it.
pub struct ActiveRun {
    pub cancel: CancellationToken,
    session_id: String,
    /// The turn's events, numbered (`runSeq`) and kept for `agent.attach`.
    log: crate::runs::RunLog,
    stop_reason: Mutex<Option<StopReason>>,
    /// Requests dropped by the interrupt decision that stopped this run (itself included).
    interrupt_dropped: std::sync::atomic::AtomicU64,
    /// Messages steered into the run; `None` once the run can no longer take any.
    steer_inbox: Mutex<Option<Vec<Steered>>>,
    /// Requesters whose steered message the run took: they get the run's reply.
    joined: Mutex<Vec<Requester>>,
    /// Everyone who receives this run's events (grows when requests steer in).
    audience: Mutex<Vec<EventEmitter>>,
}

impl ActiveRun {
    pub(crate) fn new(
        session_id: &str,
        limits: crate::runs::RunLimits,
        audience: Vec<EventEmitter>,
    ) -> Self {
        let run_id: Arc<str> = format!("run_{}", uuid::Uuid::new_v4().simple()).into();
        Self {
            cancel: CancellationToken::new(),
            session_id: session_id.to_owned(),
            log: crate::runs::RunLog::new(run_id, limits),
            stop_reason: Mutex::new(None),
            interrupt_dropped: std::sync::atomic::AtomicU64::new(0),
            steer_inbox: Mutex::new(Some(Vec::new())),
            joined: Mutex::new(Vec::new()),
            audience: Mutex::new(audience),
        }
    }

    /// Sends an event to everyone following this run, numbered with the turn's `runSeq` and
    /// kept for `agent.attach`.
    pub fn emit(&self, f: impl Fn(&EventEmitter)) {
        for (event, data) in crate::runs::capture(f) {
            let audience = self.audience();
            self.log.record(event, data, &audience);
        }
    }

    fn audience(&self) -> Vec<EventEmitter> {
        self.audience.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn run_id(&self) -> &Arc<str> {
        self.log.run_id()
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn log(&self) -> &crate::runs::RunLog {
        &self.log
    }

    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.stop_reason.lock() {
            r.get_or_insert(reason);
        }
        self.cancel.cancel();
    }

    /// Stops the run for an `interrupt` decision that dropped `dropped` requests in all.
    pub fn interrupt(&self, dropped: u64) {
        self.interrupt_dropped
            .store(dropped, std::sync::atomic::Ordering::Release);
        self.stop(StopReason::Interrupted);
    }

    /// Requests dropped by the interrupt decision that stopped this run.
    pub fn interrupt_dropped(&self) -> u64 {
        self.interrupt_dropped
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason.lock().ok().and_then(|r| *r)
    }

    /// Takes the messages steered in since the last call; their requesters join the run's
    /// reply. With `close`, the run stops accepting steering if there were none (it is about
    /// to finish), atomically.
    pub fn take_steered(&self, close: bool) -> Vec<UserMessage> {
        let Ok(mut inbox) = self.steer_inbox.lock() else {
            return Vec::new();
        };
        let taken = inbox.as_mut().map(std::mem::take).unwrap_or_default();
        if close && taken.is_empty() {
            *inbox = None;
        }
        drop(inbox);
        let mut messages = Vec::with_capacity(taken.len());
        for Steered { message, requester } in taken {
            messages.push(message);
            if let (Some(r), Ok(mut joined)) = (requester, self.joined.lock()) {
                joined.push(r);
            }
        }
        messages
    }

    /// True when steered messages are waiting (used to skip tool calls not yet started).
    pub fn has_steered(&self) -> bool {
        self.steer_inbox
            .lock()
            .map(|i| i.as_ref().is_some_and(|m| !m.is_empty()))
            .unwrap_or(false)
    }

    /// Injects a message, or gives it back (boxed: it is large) when the run no longer takes
    /// steering.
    fn try_steer(&self, steered: Steered) -> Result<(), Box<Steered>> {
        let Ok(mut inbox) = self.steer_inbox.lock() else {
            return Err(Box::new(steered));
        };
        match inbox.as_mut() {
            Some(messages) => {
                if let (Some(r), Ok(mut audience)) = (&steered.requester, self.audience.lock()) {
                    audience.push(r.events.clone());
                }
                messages.push(steered);
                Ok(())
            }
            None => Err(Box::new(steered)),
        }
    }

    /// Stops accepting steering and returns what the run never took.
    fn close_inbox(&self) -> Vec<Steered> {
        self.steer_inbox
            .lock()
            .map(|mut i| i.take().unwrap_or_default())
            .unwrap_or_default()
    }

    fn take_joined(&self) -> Vec<Requester> {
        self.joined
            .lock()
            .map(|mut j| std::mem::take(&mut *j))
            .unwrap_or_default()
    }
}

/// A message steered into a run, with its requester when it is the only copy (`steer`; with
/// `steer_backlog` the requester waits on the queued copy).
struct Steered {
    message: UserMessage,
    requester: Option<Requester>,
}

/// A turn handed to the agent.
pub struct Turn {
    pub session_id: String,
    pub messages: Vec<UserMessage>,
    /// One-line summaries of messages dropped by overflow, to inject into this turn.
    pub overflow_summaries: Vec<String>,
    pub run: Arc<ActiveRun>,
}

/// The successful end of a turn.
pub struct TurnOutput {
    pub content: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Default)]
struct LaneState {
    active: Option<Arc<ActiveRun>>,
    /// Requesters of the active run (replied to when it ends).
    active_requesters: Vec<Requester>,
    queue: VecDeque<Pending>,
    summaries: Vec<String>,
    worker: bool,
    last_enqueue: Option<Instant>,
    /// The queue mode of the last submit (for `flynn_queue_depth`).
    mode: Option<QueueMode>,
}

struct Lane {
    session_id: String,
    state: Mutex<LaneState>,
}

/// All lanes.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    /// Running and recently finished turns, and idempotency keys in flight.
    pub runs: crate::run_registry::Runs,
}

fn rejection(code: &str, lane: &str, policy: &QueuePolicy, dropped: u64) -> QueueRejection {
    QueueRejection {
        code: code.to_owned(),
        lane_id: lane.to_owned(),
        mode: policy.mode,
        overflow: policy.overflow,
        dropped_count: dropped,
    }
}

/// Ends a request with an `error` event and the matching error reply.
pub fn fail(requester: Requester, code: ErrorCode, message: &str, queue: Option<QueueRejection>) {
    requester.events.error(&ErrorEventData {
        code: code.code(),
        message: message.to_owned(),
        queue: queue.clone(),
    });
    let mut error = RpcError::new(code, message);
    if let Some(queue) = queue {
        error = error.with_data(serde_json::json!({ "queue": queue }));
    }
    let _ = requester.reply.send(Err(error));
}

fn summarize(message: &UserMessage) -> String {
    let line: String = message
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let short: String = line.chars().take(120).collect();
    if short.len() < line.len() {
        format!("{short}…")
    } else {
        short
    }
}

impl Lanes {
    fn lane(&self, session_id: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .entry(session_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Lane {
                    session_id: session_id.to_owned(),
                    state: Mutex::new(LaneState::default()),
                })
            })
            .clone()
    }

    /// Sessions with an active run or queued messages.
    pub fn active_session_ids(&self) -> Vec<String> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .values()
            .filter(|l| l.state.lock().map(|s| s.worker).unwrap_or(false))
            .map(|l| l.session_id.clone())
            .collect()
    }

    /// Messages waiting in each lane, with the lane's queue mode (for `/metrics`).
    pub fn queue_depths(&self) -> Vec<(QueueMode, usize)> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .values()
            .filter_map(|l| {
                let state = l.state.lock().ok()?;
                Some((state.mode?, state.queue.len()))
            })
            .collect()
    }

    /// Queues `pending` in its session's lane according to `policy`.
    pub fn submit(
        &self,
        gateway: &Arc<Gateway>,
        session_id: &str,
        policy: QueuePolicy,
        pending: Pending,
    ) {
        let lane = self.lane(session_id);
        let mut state = lane.state.lock().unwrap_or_else(|p| p.into_inner());
        state.last_enqueue = Some(Instant::now());
        state.mode = Some(policy.mode);

        if !state.worker {
            state.worker = true;
            state.queue.push_back(pending);
            drop(state);
            let worker = Worker {
                gateway: Arc::downgrade(gateway),
                lane: lane.clone(),
                policy,
            };
            tokio::spawn(worker.run());
            return;
        }

        let active = state.active.clone();
        match (policy.mode, active) {
            (QueueMode::Steer, Some(run)) => {
                let Pending { message, requester } = pending;
                let steered = Steered {
                    message,
                    requester: Some(Requester {
                        steered: true,
                        ..requester
                    }),
                };
                if let Err(rejected) = run.try_steer(steered)
                    && let Steered {
                        message,
                        requester: Some(requester),
                    } = *rejected
                {
                    // The run can no longer take it: it becomes a followup turn.
                    let requester = Requester {
                        steered: false,
                        ..requester
                    };
                    push_with_overflow(
                        &mut state,
                        &lane.session_id,
                        &policy,
                        Pending { message, requester },
                    );
                }
            }
            (QueueMode::SteerBacklog, Some(run)) => {
                let _ = run.try_steer(Steered {
                    message: pending.message.clone(),
                    requester: None,
                });
                push_with_overflow(&mut state, &lane.session_id, &policy, pending);
            }
            (QueueMode::Interrupt, active) => {
                let superseded = std::mem::take(&mut state.queue);
                // One decision: the queued requests and the active run, all counted together.
                let count = superseded.len() as u64 + u64::from(active.is_some());
                for old in superseded {
                    fail(
                        old.requester,
                        ErrorCode::AgentBusy,
                        "superseded by a newer message (queue mode interrupt)",
                        Some(rejection("superseded", &lane.session_id, &policy, count)),
                    );
                }
                if let Some(run) = active {
                    pending.requester.events.content(&ContentEventData {
                        text: "Interrupting the current run to handle your new message.".to_owned(),
                        transient: Some(true),
                    });
                    run.interrupt(count);
                    if let Some(gw) = Arc::downgrade(gateway).upgrade() {
                        let session = lane.session_id.clone();
                        tokio::spawn(async move {
                            let detail =
                                serde_json::json!({ "laneId": session, "mode": "interrupt" })
                                    .to_string();
                            if let Err(e) = gw
                                .store
                                .audit(
                                    "queue.preempt",
                                    Some(&session),
                                    detail,
                                    crate::gateway::now_ms(),
                                )
                                .await
                            {
                                tracing::warn!(error = %e, "could not write the queue.preempt audit entry");
                            }
                        });
                    }
                }
                state.queue.push_back(pending);
            }
            _ => push_with_overflow(&mut state, &lane.session_id, &policy, pending),
        }
    }

    /// `agent.cancel`: rejects queued requests (code 4) and cancels the active run.
    /// Returns (an active run was cancelled, queued requests rejected).
    pub async fn cancel_session(
        &self,
        session_id: &str,
        why: &str,
        policy: &QueuePolicy,
    ) -> (bool, u64) {
        let lane = {
            let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            lanes.get(session_id).cloned()
        };
        let Some(lane) = lane else {
            return (false, 0);
        };
        let mut state = lane.state.lock().unwrap_or_else(|p| p.into_inner());
        let queued: Vec<Pending> = state.queue.drain(..).collect();
        let rejected = queued.len() as u64;
        for p in queued {
            fail(
                p.requester,
                ErrorCode::RequestCancelled,
                why,
                Some(rejection("cancelled", session_id, policy, rejected)),
            );
        }
        let cancelled = match &state.active {
            Some(run) if !run.cancel.is_cancelled() => {
                run.stop(StopReason::Cancelled);
                true
            }
            _ => false,
        };
        (cancelled, rejected)
    }

    /// Waits (at most `limit`) until no lane has a worker.
    pub async fn wait_idle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.active_session_ids().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Cancels everything (shutdown).
    pub async fn cancel_all(&self, why: &str) {
        let sessions: Vec<String> = {
            let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            for lane in lanes.values() {
                let state = lane.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(run) = &state.active {
                    run.stop(StopReason::Shutdown);
                }
            }
            lanes.keys().cloned().collect()
        };
        for s in sessions {
            self.cancel_session(&s, why, &QueuePolicy::default()).await;
        }
    }
}

fn push_with_overflow(state: &mut LaneState, lane: &str, policy: &QueuePolicy, pending: Pending) {
    if state.queue.len() < policy.cap as usize {
        state.queue.push_back(pending);
        return;
    }
    let (dropped, kept) = match policy.overflow {
        Overflow::DropOld => {
            let oldest = state.queue.pop_front();
            state.queue.push_back(pending);
            (oldest, true)
        }
        Overflow::DropNew => (Some(pending), false),
    };
    let _ = kept;
    if let Some(dropped) = dropped {
        if policy.summarize_overflow {
            state.summaries.push(summarize(&dropped.message));
        }
        fail(
            dropped.requester,
            ErrorCode::AgentBusy,
            &format!(
                "the session's queue is full (cap {}, overflow {}); this message was dropped",
                policy.cap,
                match policy.overflow {
                    Overflow::DropOld => "drop_old",
                    Overflow::DropNew => "drop_new",
                }
            ),
            Some(rejection("overflow", lane, policy, 1)),
        );
    }
}

/// Runs a lane's turns one at a time until its queue is empty.
struct Worker {
    gateway: Weak<Gateway>,
    lane: Arc<Lane>,
    policy: QueuePolicy,
}

impl Worker {
    async fn run(self) {
        let mut first = true;
        loop {
            let Some(gateway) = self.gateway.upgrade() else {
                return;
            };
            // The policy may have changed (`/queue set`) while the lane was busy.
            let policy = gateway
                .queue_policy(&self.lane.session_id)
                .await
                .unwrap_or(self.policy.clone());
            if !first {
                // Nothing queued: the lane frees now, not after a debounce window.
                {
                    let mut state = self.lane.state.lock().unwrap_or_else(|p| p.into_inner());
                    if state.queue.is_empty() {
                        state.worker = false;
                        return;
                    }
                }
                self.debounce(Duration::from_millis(policy.debounce_ms))
                    .await;
            }
            first = false;
            let mut binds: Vec<String> = Vec::new();
            let turn = {
                let mut state = self.lane.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.queue.is_empty() {
                    state.worker = false;
                    return;
                }
                let pendings: Vec<Pending> = match policy.mode {
                    QueueMode::Collect => state.queue.drain(..).collect(),
                    _ => state.queue.pop_front().into_iter().collect(),
                };
                let audience = pendings
                    .iter()
                    .map(|p| p.requester.events.clone())
                    .collect();
                let agent = &gateway.config().agent;
                let limits = crate::runs::RunLimits {
                    max_events: agent.run_events_max,
                    max_bytes: agent.run_events_max_bytes,
                };
                let run = Arc::new(ActiveRun::new(&self.lane.session_id, limits, audience));
                gateway.lanes.runs.insert(run.clone(), agent.kept_cap());
                for key in pendings.iter().filter_map(|p| p.requester.key.as_deref()) {
                    gateway
                        .lanes
                        .runs
                        .bind_key(&self.lane.session_id, key, &run);
                    binds.push(key.to_owned());
                }
                state.active = Some(run.clone());
                let mut messages = Vec::new();
                for p in pendings {
                    messages.push(p.message);
                    state.active_requesters.push(p.requester);
                }
                Turn {
                    session_id: self.lane.session_id.clone(),
                    messages,
                    overflow_summaries: std::mem::take(&mut state.summaries),
                    run,
                }
            };
            let run = turn.run.clone();
            // The store learns which turn answers each key before the turn runs: after a
            // restart, attaching to it then says that it was interrupted.
            for key in binds {
                if let Err(e) = gateway
                    .store
                    .bind_idempotency_key(&self.lane.session_id, &key, run.run_id())
                    .await
                {
                    tracing::warn!(error = %e, "could not record the turn of an idempotencyKey");
                }
            }
            let started = Instant::now();
            let outcome = crate::agent::run_turn(&gateway, turn).await;
            match &outcome {
                Ok(out) => crate::metrics::get().turn(
                    true,
                    started.elapsed(),
                    out.input_tokens,
                    out.output_tokens,
                ),
                Err(_) => crate::metrics::get().turn(false, started.elapsed(), 0, 0),
            }
            let mut finished = false;
            let requesters = {
                let mut state = self.lane.state.lock().unwrap_or_else(|p| p.into_inner());
                // Close steering before the lane frees, so nothing slips in unseen.
                let leftover = run.close_inbox();
                state.active = None;
                let mut requesters = std::mem::take(&mut state.active_requesters);
                requesters.extend(run.take_joined());
                // Steered messages the run never took are not lost: they become the next
                // turn, or are rejected with the rest when the run was cancelled.
                for Steered { message, requester } in leftover.into_iter().rev() {
                    let Some(requester) = requester else { continue };
                    if matches!(
                        run.stop_reason(),
                        Some(StopReason::Cancelled | StopReason::Shutdown)
                    ) {
                        fail(
                            requester,
                            ErrorCode::RequestCancelled,
                            ErrorCode::RequestCancelled.default_message(),
                            Some(rejection("cancelled", &self.lane.session_id, &policy, 1)),
                        );
                    } else {
                        let requester = Requester {
                            steered: false,
                            ..requester
                        };
                        state.queue.push_front(Pending { message, requester });
                    }
                }
                // Free the lane before replying, so a client that reacts to the reply sees the
                // session idle.
                if state.queue.is_empty() {
                    state.worker = false;
                    finished = true;
                }
                requesters
            };
            deliver(&gateway, &run, outcome, requesters);
            if finished {
                return;
            }
        }
    }

    /// Waits until no message arrived for `debounce_ms`.
    async fn debounce(&self, window: Duration) {
        loop {
            let last = self
                .lane
                .state
                .lock()
                .map(|s| s.last_enqueue)
                .unwrap_or(None);
            let Some(last) = last else { return };
            let quiet = last.elapsed();
            if quiet >= window {
                return;
            }
            tokio::time::sleep(window - quiet).await;
        }
    }
}

fn deliver(
    gateway: &Gateway,
    run: &Arc<ActiveRun>,
    outcome: Result<TurnOutput, RpcError>,
    requesters: Vec<Requester>,
) {
    let reply: Reply = match outcome {
        Ok(output) => Ok(AgentSendResult {
            content: output.content,
            session_id: Some(run.session_id().to_owned()),
            steered: None,
            run_id: Some(run.run_id().to_string()),
            replayed: None,
            usage: flynn_protocol::types::TokenUsage {
                input_tokens: output.input_tokens,
                output_tokens: output.output_tokens,
            },
        }),
        Err(error) => {
            let queue = match run.stop_reason() {
                Some(StopReason::Interrupted) => error.data.as_ref().and_then(|d| {
                    serde_json::from_value::<QueueRejection>(d["queue"].clone()).ok()
                }),
                _ => None,
            };
            let code = error.error_code().unwrap_or(ErrorCode::InternalError);
            let mut e = RpcError::new(code, &error.message);
            if let Some(queue) = queue {
                e = e.with_data(serde_json::json!({ "queue": queue }));
            }
            Err(e)
        }
    };
    // The final event goes to the requesters and the attached followers, numbered and kept.
    let (event, data) = crate::runs::capture(|e| crate::runs::final_event(e, &reply))
        .into_iter()
        .next()
        .unwrap_or((
            flynn_protocol::events::ERROR,
            serde_json::json!({ "code": ErrorCode::InternalError.code(), "message": "the turn ended without an outcome" }),
        ));
    let emitters: Vec<EventEmitter> = requesters.iter().map(|r| r.events.clone()).collect();
    run.log().finish(event, data, &emitters, reply.clone());
    if let Ok(answer) = &reply {
        crate::push::turn_finished(gateway, run.session_id(), run.run_id(), &answer.content);
    }
    for r in requesters {
        let reply = match &reply {
            Ok(result) => Ok(AgentSendResult {
                steered: r.steered.then_some(true),
                ..result.clone()
            }),
            Err(e) => Err(e.clone()),
        };
        let _ = r.reply.send(reply);
    }
    // Attachable for the grace period (while the gateway-wide cap holds it), then only the
    // stored history remains.
    gateway
        .lanes
        .runs
        .ended(run.run_id(), gateway.config().agent.kept_cap());
    let grace = Duration::from_secs(gateway.config().agent.run_grace_secs);
    if let Some(gw) = gateway.arc() {
        let run_id = run.run_id().clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            gw.lanes.runs.expire(&run_id);
        });
    }
}
