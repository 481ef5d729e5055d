//! What the agent needs from its host (the gateway, a test), and nothing more: the store, the
//! current [`Settings`] (the configuration slice, the model resolver and the tool registry, as
//! one snapshot), the tool approvals, and [`Hooks`] for what the host does when a turn or a tool
//! call ends (metrics, Web Push when nobody watched).
//!
//! Where a turn's events go is the requester's `flynn_protocol::wire::EventEmitter`, built over
//! an `EventSink` that a WebSocket connection, an HTTP channel or a test implements.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flynn_models::{ModelTiers, Provider};
use flynn_store::Store;
use flynn_tools::ToolRegistry;

use crate::approvals::Approvals;
use crate::config::{AgentConfig, QueueConfig, QueuePolicy};
use crate::session_config::StoredSessionConfig;

/// One configuration snapshot as the agent sees it. The host builds a new one for each
/// configuration it loads and swaps it in whole, so a turn never sees half of a reload.
pub struct Settings {
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[queue]`: the channels' queue policies (sessions may override theirs).
    pub queue: QueueConfig,
    /// The model resolver: a session's model tier to its provider.
    pub models: Arc<ModelTiers>,
    /// The tools a turn may call.
    pub tools: Arc<ToolRegistry>,
    /// The folder tools work in.
    pub workspace: PathBuf,
}

impl Settings {
    /// The provider of a model tier (the default tier when `None` or unknown).
    pub fn provider(&self, tier: Option<&str>) -> Arc<dyn Provider> {
        self.models.resolve(tier)
    }
}

/// Where the agent reads the current [`Settings`] (an `arc_swap::ArcSwap` in the gateway).
pub trait SettingsSource: Send + Sync + 'static {
    fn settings(&self) -> Arc<Settings>;
}

/// Fixed settings (tests, tools that never reload).
impl SettingsSource for Arc<Settings> {
    fn settings(&self) -> Arc<Settings> {
        self.clone()
    }
}

/// What the host does when turns and tool calls end. Every method has a default that does
/// nothing, so a test implements none.
pub trait Hooks: Send + Sync + 'static {
    /// A turn of `session_id` ended with `answer` (the gateway sends Web Push when no
    /// connection follows the session). Called before the requesters get their reply.
    fn turn_finished(&self, session_id: &str, run_id: &str, answer: &str) {
        let _ = (session_id, run_id, answer);
    }

    /// A turn ended (`ok`: with an answer), after `elapsed`, with the model's token usage.
    fn turn_measured(&self, ok: bool, elapsed: Duration, input_tokens: u64, output_tokens: u64) {
        let _ = (ok, elapsed, input_tokens, output_tokens);
    }

    /// A tool call ended: `known` is false for an unknown tool name; `outcome` is `ok`,
    /// `failed` or `error`.
    fn tool_ran(&self, tool: &str, known: bool, outcome: &'static str) {
        let _ = (tool, known, outcome);
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// The agent's inputs, shared by its lanes and turns.
pub struct Deps {
    pub store: Store,
    pub settings: Arc<dyn SettingsSource>,
    pub approvals: Arc<Approvals>,
    pub hooks: Arc<dyn Hooks>,
}

impl Deps {
    /// The current settings snapshot.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.settings()
    }

    /// The queue policy of a session: its stored overrides over its channel's policy. `None`
    /// when the store cannot be read.
    pub async fn queue_policy(&self, session_id: &str) -> Option<QueuePolicy> {
        let (frontend, _) = flynn_store::split_session_id(session_id);
        let base = self.settings().queue.policy_for(frontend);
        // Known without a trip to the store's writer thread once the session was read (every
        // turn's start reads it) or its config written.
        let config = match self.store.known_session_config(session_id) {
            Some(config) => config,
            None => self
                .store
                .session(session_id)
                .await
                .ok()?
                .and_then(|s| s.config.map(Arc::from)),
        };
        let overrides = StoredSessionConfig::parse(config.as_deref());
        Some(overrides.effective_queue(&base))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
