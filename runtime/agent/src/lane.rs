//! One session's lane (its active run, its queue) and what the lanes and their workers share:
//! the agent's inputs, the lanes by session and the kept runs. Also the queue's overflow rule
//! and the rejection every refused request gets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use flynn_protocol::EmitEvents as _;
use flynn_protocol::ErrorCode;
use flynn_protocol::types::{ErrorEventData, QueueRejection};
use flynn_protocol::wire::RpcError;

use crate::config::{Overflow, QueueMode, QueuePolicy};
use crate::deps::Deps;
use crate::run::{ActiveRun, Pending, Requester, UserMessage};
use crate::run_registry::Runs;

#[derive(Default)]
pub(crate) struct LaneState {
    pub(crate) active: Option<Arc<ActiveRun>>,
    /// Requesters of the active run (replied to when it ends).
    pub(crate) active_requesters: Vec<Requester>,
    pub(crate) queue: VecDeque<Pending>,
    pub(crate) summaries: Vec<String>,
    pub(crate) worker: bool,
    pub(crate) last_enqueue: Option<Instant>,
    /// The queue mode of the last submit (for `flynn_queue_depth`).
    pub(crate) mode: Option<QueueMode>,
}

pub(crate) struct Lane {
    pub(crate) session_id: String,
    pub(crate) state: Mutex<LaneState>,
}

impl Lane {
    pub(crate) fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the lanes and their workers share.
pub(crate) struct Shared {
    pub(crate) deps: Deps,
    pub(crate) lanes: Mutex<HashMap<String, Arc<Lane>>>,
    /// Running and recently finished turns, and idempotency keys in flight.
    pub(crate) runs: Arc<Runs>,
}

impl Shared {
    pub(crate) fn lanes(&self) -> MutexGuard<'_, HashMap<String, Arc<Lane>>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn rejection(
    code: &str,
    lane: &str,
    policy: &QueuePolicy,
    dropped: u64,
) -> QueueRejection {
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

/// Queues `pending`, dropping the oldest or the newest when the queue is at its cap.
pub(crate) fn push_with_overflow(
    state: &mut LaneState,
    lane: &str,
    policy: &QueuePolicy,
    pending: Pending,
) {
    if state.queue.len() < policy.cap as usize {
        state.queue.push_back(pending);
        return;
    }
    let dropped = match policy.overflow {
        Overflow::DropOld => {
            let oldest = state.queue.pop_front();
            state.queue.push_back(pending);
            oldest
        }
        Overflow::DropNew => Some(pending),
    };
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
