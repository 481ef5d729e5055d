//! The agent's configuration sections: `[queue]` (the queue policy of session lanes, by
//! channel) and `[agent]` (the turn loop, approvals, context levels, kept runs). The gateway's
//! configuration file embeds them; its JSON Schema is generated from these types too.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kept_cap::KeptCap;

/// Queue modes of a session lane and what happens when a lane's queue is full: the protocol's
/// enums (the config file spells them as the wire does).
pub use flynn_protocol::types::{QueueMode, QueueOverflow as Overflow};

/// Queue policy of a lane (`[queue]`, `[queue.channels.<frontend>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueuePolicy {
    pub mode: QueueMode,
    pub cap: u32,
    pub overflow: Overflow,
    pub debounce_ms: u64,
    pub summarize_overflow: bool,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            mode: QueueMode::Followup,
            cap: 8,
            overflow: Overflow::DropOld,
            debounce_ms: 250,
            summarize_overflow: true,
        }
    }
}

/// `[queue]`: the default policy and per-channel overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(flatten)]
    pub default: QueuePolicy,
    /// Overrides by channel (the session id's frontend, e.g. `telegram`); keys a channel does
    /// not name keep the `[queue]` value.
    pub channels: BTreeMap<String, QueuePolicyOverride>,
}

impl QueueConfig {
    /// The queue policy of a channel (frontend), before per-session overrides.
    pub fn policy_for(&self, frontend: &str) -> QueuePolicy {
        match self.channels.get(frontend) {
            Some(channel) => channel.over(&self.default),
            None => self.default.clone(),
        }
    }
}

/// Part of a queue policy: what a channel changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueuePolicyOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<QueueMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summarize_overflow: Option<bool>,
}

impl QueuePolicyOverride {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `base` with this override's keys applied.
    pub fn over(&self, base: &QueuePolicy) -> QueuePolicy {
        QueuePolicy {
            mode: self.mode.unwrap_or(base.mode),
            cap: self.cap.unwrap_or(base.cap),
            overflow: self.overflow.unwrap_or(base.overflow),
            debounce_ms: self.debounce_ms.unwrap_or(base.debounce_ms),
            summarize_overflow: self.summarize_overflow.unwrap_or(base.summarize_overflow),
        }
    }
}

/// `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub system_prompt: String,
    /// Most model calls in one run (tool loops stop there).
    pub max_iterations: u32,
    /// How long a tool approval request waits for the client.
    pub approval_timeout_ms: u64,
    /// `context_warning` level `warning` from this usage percentage.
    pub warning_pct: f64,
    /// Checkpoint (and optional compaction) from this usage percentage.
    pub threshold_pct: f64,
    pub auto_compact: bool,
    /// How long an `agent.send` `idempotencyKey` and its reply are kept (in the store, so
    /// across restarts), in seconds.
    pub idempotency_ttl_secs: u64,
    /// Most events kept per turn for `agent.attach` (the oldest are dropped first).
    pub run_events_max: usize,
    /// Most bytes of event data kept per turn for `agent.attach` (the oldest are dropped first).
    pub run_events_max_bytes: usize,
    /// How long a finished turn's events and outcome stay attachable, in seconds.
    pub run_grace_secs: u64,
    /// Most turns kept for `agent.attach` across the gateway, running ones included: beyond
    /// it, the finished turns that ended first are forgotten (running turns never are).
    pub runs_kept_max: usize,
    /// Most bytes of kept event data across all kept turns: beyond it, the finished turns that
    /// ended first are forgotten (running turns never are).
    pub runs_kept_max_bytes: usize,
}

impl AgentConfig {
    /// The gateway-wide bound of kept turns.
    pub fn kept_cap(&self) -> KeptCap {
        KeptCap {
            max_turns: self.runs_kept_max,
            max_bytes: self.runs_kept_max_bytes,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are Flynn, a helpful personal assistant.".to_owned(),
            max_iterations: 8,
            approval_timeout_ms: 60_000,
            warning_pct: 70.0,
            threshold_pct: 80.0,
            auto_compact: false,
            idempotency_ttl_secs: 86_400,
            run_events_max: 10_000,
            run_events_max_bytes: 4 * 1024 * 1024,
            run_grace_secs: 300,
            runs_kept_max: 1_000,
            runs_kept_max_bytes: 64 * 1024 * 1024,
        }
    }
}
