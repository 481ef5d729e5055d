//! The gateway's shared state: configuration (one snapshot, swapped whole on reload), the
//! store, live connections, the agent's lanes. Handlers get it as `&Gateway`; work that
//! outlives a call clones the parts it needs (the store, the lanes), never the gateway.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use flynn_agent::approvals::Approvals;
use flynn_agent::deps::Deps;
use flynn_agent::lanes::Lanes;
use flynn_models::Provider;
use flynn_store::Store;
use flynn_tools::ToolRegistry;
use tokio_util::sync::CancellationToken;

use crate::agent_hooks::GatewayHooks;
use crate::auth::FailureLimiter;
use crate::config::{Config, QueuePolicy};
pub use crate::connections::{ConnectionSlot, Connections, Reserve};
use crate::node_registry::NodeRegistry;
use crate::push::sender::Notifier;
use crate::snapshot::{ConfigSnapshot, SharedConfig, SnapshotError};
use crate::start_error::StartError;

/// Everything the handlers share.
pub struct Gateway {
    /// The configuration and what is built from it, swapped whole by [`Gateway::set_config`].
    snapshot: SharedConfig,
    /// The file `config.reload` reads, if the daemon was started with one.
    pub config_path: Option<PathBuf>,
    pub store: Store,
    pub started: Instant,
    pub connections: Arc<Connections>,
    pub limiter: FailureLimiter,
    /// Connections accepted but not yet authenticated (capped; the oldest makes room).
    pub unauthenticated: Arc<crate::admission::Unauthenticated>,
    /// Bytes of unfinished incoming messages, across connections (read at start).
    pub inbound: crate::inbound::InboundBudget,
    /// Cancelled once shutdown reaches the connections (after runs were cancelled).
    pub shutdown: CancellationToken,
    /// Notified by a signal handler to start a graceful shutdown.
    pub shutdown_requested: tokio::sync::Notify,
    /// The agent (`flynn_agent`): session lanes, turns, kept runs.
    pub lanes: Lanes,
    pub nodes: NodeRegistry,
    /// Tool approvals, shared with the agent's turns.
    pub approvals: Arc<Approvals>,
    /// Web Push: the VAPID key and client (`crate::push`).
    pub push: Arc<crate::push::Push>,
    /// The TLS acceptor when `[server.tls]` is set (re-read by `config.reload`).
    pub tls: crate::tls::Tls,
    /// Chat channels' caches: signing keys, reply tokens, wrong pairing codes.
    pub channels: crate::channels::state::ChannelState,
}

impl Gateway {
    /// Builds the gateway. Fails when a configured model tier cannot be built.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        store: Store,
    ) -> Result<Arc<Self>, StartError> {
        let inbound = crate::inbound::InboundBudget::new(
            config.server.max_inbound_bytes,
            config.server.inbound_free_bytes_per_connection,
            std::time::Duration::from_millis(config.server.inbound_wait_timeout_ms),
        );
        let snapshot =
            SharedConfig::new(ConfigSnapshot::build(config, None).map_err(|e| match e {
                SnapshotError::Models(e) => StartError::Models(e),
                SnapshotError::Ops(e) => StartError::Ops(e),
            })?);
        let tls = crate::tls::Tls::new(&snapshot.config().server.tls)?;
        let connections = Arc::<Connections>::default();
        let approvals = Arc::<Approvals>::default();
        let push = Arc::<crate::push::Push>::default();
        let hooks = GatewayHooks {
            push: Notifier {
                config: snapshot.clone(),
                store: store.clone(),
                push: push.clone(),
                watchers: connections.clone(),
            },
        };
        let lanes = Lanes::new(Deps {
            store: store.clone(),
            settings: Arc::new(snapshot.clone()),
            approvals: approvals.clone(),
            hooks: Arc::new(hooks),
        });
        Ok(Arc::new(Self {
            tls,
            lanes,
            nodes: NodeRegistry::default(),
            approvals,
            push,
            channels: crate::channels::state::ChannelState::default(),
            snapshot,
            config_path,
            store,
            started: Instant::now(),
            connections,
            limiter: FailureLimiter::default(),
            unauthenticated: Arc::default(),
            inbound,
            shutdown: CancellationToken::new(),
            shutdown_requested: tokio::sync::Notify::new(),
        }))
    }

    /// The provider of a model tier (the default tier when `None` or unknown).
    pub fn provider(&self, tier: Option<&str>) -> Arc<dyn Provider> {
        self.snapshot.current().agent.provider(tier)
    }

    /// The operator views (backends, dependencies, observability, logs).
    pub fn ops(&self) -> flynn_ops::Ops {
        self.snapshot.current().ops.clone()
    }

    /// The tool registry.
    pub fn tools(&self) -> Arc<ToolRegistry> {
        self.snapshot.current().agent.tools.clone()
    }

    /// The folder tools work in.
    pub fn workspace(&self) -> PathBuf {
        self.snapshot.current().agent.workspace.clone()
    }

    /// The queue policy of a session: its stored overrides over its channel's policy.
    pub async fn queue_policy(&self, session_id: &str) -> Option<QueuePolicy> {
        self.lanes.queue_policy(session_id).await
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.snapshot.config()
    }

    /// Replaces the configuration (already validated by the caller): model tiers, tools and
    /// ops views are rebuilt first and swapped in with it as one snapshot, so a bad section
    /// leaves everything as it was.
    pub fn set_config(&self, config: Config) -> Result<(), String> {
        // Calls still running keep counting against the (possibly new) per-session limit.
        let current = self.snapshot.current();
        let snapshot =
            ConfigSnapshot::build(config, Some(&current.agent.tools)).map_err(|e| e.to_string())?;
        // Certificates are re-read on every reload (renewals); unusable files change nothing.
        let tls = crate::tls::load(&snapshot.config.server.tls).map_err(|e| e.to_string())?;
        self.tls.set(tls);
        self.snapshot.swap(snapshot);
        Ok(())
    }

    /// A connection closed: its node is marked disconnected and its tool-approval settings
    /// are dropped (a closed client cannot answer).
    pub fn connection_closed(&self, connection_id: &str) {
        self.approvals.connection_closed(connection_id);
        if let Some(node) = self.nodes.disconnect(connection_id) {
            tracing::info!(%node, "node connection closed");
        }
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
