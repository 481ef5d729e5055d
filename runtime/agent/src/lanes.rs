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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flynn_protocol::EmitEvents as _;
use flynn_protocol::ErrorCode;
use flynn_protocol::types::{ContentEventData, ContextBudget};
use flynn_protocol::wire::RpcError;

use crate::config::{QueueMode, QueuePolicy};
use crate::deps::{Deps, now_ms};
use crate::lane::{Lane, LaneState, Shared, fail, push_with_overflow, rejection};
use crate::run::Steered;
pub use crate::run::{
    ActiveRun, Pending, Reply, Requester, StopReason, Turn, TurnOutput, UserMessage,
};
use crate::run_registry::Runs;
use crate::worker::Worker;

/// All lanes: the agent's handle. Cheap to clone (all clones share the lanes).
#[derive(Clone)]
pub struct Lanes {
    /// Running and recently finished turns, and idempotency keys in flight.
    pub runs: Arc<Runs>,
    shared: Arc<Shared>,
}

impl Lanes {
    /// The agent over `deps`, with no lane yet.
    pub fn new(deps: Deps) -> Self {
        let runs = Arc::new(Runs::default());
        Self {
            shared: Arc::new(Shared {
                deps,
                lanes: Mutex::new(HashMap::new()),
                runs: runs.clone(),
            }),
            runs,
        }
    }

    /// The agent's inputs.
    pub fn deps(&self) -> &Deps {
        &self.shared.deps
    }

    /// The queue policy of a session: its stored overrides over its channel's policy.
    pub async fn queue_policy(&self, session_id: &str) -> Option<QueuePolicy> {
        self.shared.deps.queue_policy(session_id).await
    }

    /// The estimated context budget of a stored session (for `system.contextUsage`).
    pub async fn session_budget(
        &self,
        session_id: &str,
        stored_config: Option<&str>,
    ) -> Result<ContextBudget, RpcError> {
        crate::context::session_budget(&self.shared.deps, session_id, stored_config).await
    }

    fn lane(&self, session_id: &str) -> Arc<Lane> {
        let mut lanes = self.shared.lanes();
        // Found without making the key: a session's every send comes here.
        if let Some(lane) = lanes.get(session_id) {
            return lane.clone();
        }
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
        self.shared
            .lanes()
            .values()
            .filter(|l| l.state.lock().map(|s| s.worker).unwrap_or(false))
            .map(|l| l.session_id.clone())
            .collect()
    }

    /// Messages waiting in each lane, with the lane's queue mode (for `/metrics`).
    pub fn queue_depths(&self) -> Vec<(QueueMode, usize)> {
        self.shared
            .lanes()
            .values()
            .filter_map(|l| {
                let state = l.state.lock().ok()?;
                Some((state.mode?, state.queue.len()))
            })
            .collect()
    }

    /// Queues `pending` in its session's lane according to `policy`.
    pub fn submit(&self, session_id: &str, policy: QueuePolicy, pending: Pending) {
        let lane = self.lane(session_id);
        let mut state = lane.lock();
        state.last_enqueue = Some(Instant::now());
        state.mode = Some(policy.mode);
        if !state.worker {
            state.worker = true;
            state.queue.push_back(pending);
            drop(state);
            let worker = Worker {
                shared: self.shared.clone(),
                lane: lane.clone(),
                policy,
            };
            tokio::spawn(worker.run());
            return;
        }
        let active = state.active.clone();
        match (policy.mode, active) {
            (QueueMode::Steer, Some(run)) => steer(&mut state, &lane, &policy, &run, pending),
            (QueueMode::SteerBacklog, Some(run)) => {
                let _ = run.try_steer(Steered {
                    message: pending.message.clone(),
                    requester: None,
                });
                push_with_overflow(&mut state, &lane.session_id, &policy, pending);
            }
            (QueueMode::Interrupt, active) => {
                self.interrupt(&mut state, &lane.session_id, &policy, active, pending)
            }
            _ => push_with_overflow(&mut state, &lane.session_id, &policy, pending),
        }
    }

    /// `interrupt`: supersedes the queued requests, stops the active run and queues `pending`.
    fn interrupt(
        &self,
        state: &mut LaneState,
        session_id: &str,
        policy: &QueuePolicy,
        active: Option<Arc<ActiveRun>>,
        pending: Pending,
    ) {
        let superseded = std::mem::take(&mut state.queue);
        // One decision: the queued requests and the active run, all counted together.
        let count = superseded.len() as u64 + u64::from(active.is_some());
        for old in superseded {
            fail(
                old.requester,
                ErrorCode::AgentBusy,
                "superseded by a newer message (queue mode interrupt)",
                Some(rejection("superseded", session_id, policy, count)),
            );
        }
        if let Some(run) = active {
            pending.requester.events.content(&ContentEventData {
                text: "Interrupting the current run to handle your new message.".to_owned(),
                transient: Some(true),
            });
            run.interrupt(count);
            let store = self.shared.deps.store.clone();
            let session = session_id.to_owned();
            tokio::spawn(async move {
                let detail =
                    serde_json::json!({ "laneId": session, "mode": "interrupt" }).to_string();
                if let Err(e) = store
                    .audit("queue.preempt", Some(&session), detail, now_ms())
                    .await
                {
                    tracing::warn!(error = %e, "could not write the queue.preempt audit entry");
                }
            });
        }
        state.queue.push_back(pending);
    }

    /// `agent.cancel`: rejects queued requests (code 4) and cancels the active run.
    /// Returns (an active run was cancelled, queued requests rejected).
    pub async fn cancel_session(
        &self,
        session_id: &str,
        why: &str,
        policy: &QueuePolicy,
    ) -> (bool, u64) {
        let lane = self.shared.lanes().get(session_id).cloned();
        let Some(lane) = lane else {
            return (false, 0);
        };
        let mut state = lane.lock();
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
            let lanes = self.shared.lanes();
            for lane in lanes.values() {
                if let Some(run) = &lane.lock().active {
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

/// `steer`: injects `pending` into the active run; when the run can no longer take it, it
/// becomes a followup turn.
fn steer(
    state: &mut LaneState,
    lane: &Lane,
    policy: &QueuePolicy,
    run: &ActiveRun,
    pending: Pending,
) {
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
        let requester = Requester {
            steered: false,
            ..requester
        };
        push_with_overflow(
            state,
            &lane.session_id,
            policy,
            Pending { message, requester },
        );
    }
}
