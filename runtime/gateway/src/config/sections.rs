//! The sections besides `[server]` that the gateway itself defines: `[storage]`, `[queue]`,
//! `[agent]`, `[pairing]`, `[presence]`, `[canvas]`, `[logging]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[storage]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (default: $XDG_DATA_HOME/flynn, else ~/.local/share/flynn).
    pub data_dir: Option<PathBuf>,
}

/// Queue modes of a session lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueMode {
    Followup,
    Collect,
    Steer,
    SteerBacklog,
    Interrupt,
}

/// What happens when a lane's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    DropOld,
    DropNew,
}

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
    pub fn kept_cap(&self) -> crate::kept_cap::KeptCap {
        crate::kept_cap::KeptCap {
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

/// `[pairing]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PairingConfig {
    pub ttl_seconds: u64,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self { ttl_seconds: 300 }
    }
}

/// `[presence]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// A sender is online when last seen within this many seconds.
    pub online_threshold_seconds: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            online_threshold_seconds: 300,
        }
    }
}

/// `[canvas]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CanvasConfig {
    /// Largest artifact (content and metadata as JSON, title and type), in bytes.
    pub max_artifact_bytes: usize,
    pub max_artifacts_per_session: u32,
}

impl Default for CanvasConfig {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 256 * 1024,
            max_artifacts_per_session: 200,
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter, e.g. `info` or `flynn_gateway=debug`. RUST_LOG overrides it.
    pub level: String,
    /// `text` (one line per event; ANSI colours only when stderr is a terminal and NO_COLOR is
    /// unset) or `json` (one JSON object per line, for log shippers). Read at start.
    pub format: LogFormat,
}

/// The format of the daemon's log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}
