//! A lane's worker: runs the lane's turns one at a time until its queue is empty, then frees the
//! lane. Each turn: take the next message (or, in `collect` mode, all of them), start its run
//! (kept for `agent.attach`, its `idempotencyKey`s bound), run it, then reply to everyone who
//! waits for it and keep it attachable for the grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flynn_protocol::ErrorCode;
use flynn_protocol::types::{AgentSendResult, QueueRejection};
use flynn_protocol::wire::{EventEmitter, RpcError};

use crate::config::{QueueMode, QueuePolicy};
use crate::lane::{Lane, Shared, fail, rejection};
use crate::run::{ActiveRun, Pending, Reply, Requester, Steered, StopReason, Turn, TurnOutput};

pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) lane: Arc<Lane>,
    /// The policy of the submit that started the worker (used when the store cannot say).
    pub(crate) policy: QueuePolicy,
}

impl Worker {
    pub(crate) async fn run(self) {
        let mut first = true;
        loop {
            // The first turn runs under the policy its submitter has just read; a later one
            // reads it again, as it may have changed (`/queue set`) while the lane was busy.
            let policy = if first {
                self.policy.clone()
            } else {
                // Nothing queued: the lane frees now, not after a debounce window.
                if self.free_if_empty() {
                    return;
                }
                let policy = self
                    .shared
                    .deps
                    .queue_policy(&self.lane.session_id)
                    .await
                    .unwrap_or(self.policy.clone());
                self.debounce(Duration::from_millis(policy.debounce_ms))
                    .await;
                policy
            };
            first = false;
            let Some((turn, keys)) = self.next_turn(&policy) else {
                return;
            };
            let run = turn.run.clone();
            self.bind_keys(&run, keys).await;
            let started = Instant::now();
            let outcome = crate::turn::run_turn(&self.shared.deps, turn).await;
            let (ok, input, output) = match &outcome {
                Ok(out) => (true, out.input_tokens, out.output_tokens),
                Err(_) => (false, 0, 0),
            };
            let hooks = &self.shared.deps.hooks;
            hooks.turn_measured(ok, started.elapsed(), input, output);
            let (requesters, finished) = self.end_run(&run, &policy);
            deliver(&self.shared, &run, outcome, requesters);
            if finished {
                return;
            }
        }
    }

    /// Frees the lane when nothing is queued; true when it did.
    fn free_if_empty(&self) -> bool {
        let mut state = self.lane.lock();
        if state.queue.is_empty() {
            state.worker = false;
            return true;
        }
        false
    }

    /// Takes the next turn's messages off the queue and starts its run (kept, with its keys
    /// bound); `None` (and the lane freed) when nothing is queued.
    fn next_turn(&self, policy: &QueuePolicy) -> Option<(Turn, Vec<String>)> {
        let mut state = self.lane.lock();
        if state.queue.is_empty() {
            state.worker = false;
            return None;
        }
        let pendings: Vec<Pending> = match policy.mode {
            QueueMode::Collect => state.queue.drain(..).collect(),
            _ => state.queue.pop_front().into_iter().collect(),
        };
        let audience = pendings
            .iter()
            .map(|p| p.requester.events.clone())
            .collect();
        let settings = self.shared.deps.settings();
        let agent = &settings.agent;
        let limits = crate::runs::RunLimits {
            max_events: agent.run_events_max,
            max_bytes: agent.run_events_max_bytes,
        };
        let run = Arc::new(ActiveRun::new(&self.lane.session_id, limits, audience));
        let runs = &self.shared.runs;
        runs.insert(run.clone(), agent.kept_cap());
        let mut keys = Vec::new();
        for key in pendings.iter().filter_map(|p| p.requester.key.as_deref()) {
            runs.bind_key(&self.lane.session_id, key, &run);
            keys.push(key.to_owned());
        }
        state.active = Some(run.clone());
        let mut messages = Vec::with_capacity(pendings.len());
        for p in pendings {
            messages.push(p.message);
            state.active_requesters.push(p.requester);
        }
        let turn = Turn {
            session_id: self.lane.session_id.clone(),
            messages,
            overflow_summaries: std::mem::take(&mut state.summaries),
            run,
        };
        Some((turn, keys))
    }

    /// The store learns which turn answers each key before the turn runs: after a restart,
    /// attaching to it then says that it was interrupted.
    async fn bind_keys(&self, run: &ActiveRun, keys: Vec<String>) {
        for key in keys {
            if let Err(e) = self
                .shared
                .deps
                .store
                .bind_idempotency_key(&self.lane.session_id, &key, run.run_id())
                .await
            {
                tracing::warn!(error = %e, "could not record the turn of an idempotencyKey");
            }
        }
    }

    /// Ends the lane's active run: closes its steering, takes everyone who waits for its reply,
    /// and frees the lane when nothing is queued (returned as `true`: the worker is done).
    fn end_run(&self, run: &ActiveRun, policy: &QueuePolicy) -> (Vec<Requester>, bool) {
        let mut state = self.lane.lock();
        // Close steering before the lane frees, so nothing slips in unseen.
        let leftover = run.close_inbox();
        state.active = None;
        let mut requesters = std::mem::take(&mut state.active_requesters);
        requesters.extend(run.take_joined());
        // Steered messages the run never took are not lost: they become the next turn, or are
        // rejected with the rest when the run was cancelled.
        let cancelled = matches!(
            run.stop_reason(),
            Some(StopReason::Cancelled | StopReason::Shutdown)
        );
        for Steered { message, requester } in leftover.into_iter().rev() {
            let Some(requester) = requester else { continue };
            if cancelled {
                fail(
                    requester,
                    ErrorCode::RequestCancelled,
                    ErrorCode::RequestCancelled.default_message(),
                    Some(rejection("cancelled", &self.lane.session_id, policy, 1)),
                );
            } else {
                let requester = Requester {
                    steered: false,
                    ..requester
                };
                state.queue.push_front(Pending { message, requester });
            }
        }
        // Free the lane before replying, so a client that reacts to the reply sees the session
        // idle.
        let finished = state.queue.is_empty();
        if finished {
            state.worker = false;
        }
        (requesters, finished)
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

/// The reply a turn's outcome gives its requesters.
fn reply_of(run: &ActiveRun, outcome: Result<TurnOutput, RpcError>) -> Reply {
    match outcome {
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
    }
}

/// Sends `reply` to each requester (marked `steered` for those who steered in); the last one
/// gets it without a copy (nearly every turn has one requester).
fn reply_each(mut requesters: Vec<Requester>, reply: Reply) {
    let send = |r: Requester, reply: Reply| {
        let reply = match reply {
            Ok(result) => Ok(AgentSendResult {
                steered: r.steered.then_some(true),
                ..result
            }),
            Err(e) => Err(e),
        };
        let _ = r.reply.send(reply);
    };
    let last = requesters.pop();
    for r in requesters {
        send(r, reply.clone());
    }
    if let Some(r) = last {
        send(r, reply);
    }
}

/// Sends a turn's final event and reply, and keeps the turn attachable for its grace period.
fn deliver(
    shared: &Arc<Shared>,
    run: &Arc<ActiveRun>,
    outcome: Result<TurnOutput, RpcError>,
    requesters: Vec<Requester>,
) {
    let reply = reply_of(run, outcome);
    // The final event goes to the requesters and the attached followers, numbered and kept.
    let (event, data) = crate::runs::encoded_final_event(&reply);
    let emitters: Vec<EventEmitter> = requesters.iter().map(|r| r.events.clone()).collect();
    run.log().finish(event, data, &emitters, reply.clone());
    if let Ok(answer) = &reply {
        let hooks = &shared.deps.hooks;
        hooks.turn_finished(run.session_id(), run.run_id(), &answer.content);
    }
    reply_each(requesters, reply);
    // Attachable for the grace period (while the gateway-wide cap holds it), then only the
    // stored history remains. The registry forgets it when next used after that: a task
    // sleeping out each turn's grace period cost a spawn and a timer per turn, and at 4,000
    // turns/s the 300 s default held over a million of them.
    let settings = shared.deps.settings();
    let grace = Duration::from_secs(settings.agent.run_grace_secs);
    shared
        .runs
        .ended(run.run_id(), settings.agent.kept_cap(), grace);
}
