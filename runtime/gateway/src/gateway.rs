//! The gateway's shared state: configuration (reloadable), the store, live connections and
//! sessions. Handlers get it as `&Gateway`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Instant;

use flynn_store::Store;
use tokio_util::sync::CancellationToken;

use flynn_models::{ModelTiers, Provider};
use flynn_tools::ToolRegistry;

use crate::approvals::Approvals;
use crate::auth::FailureLimiter;
use crate::config::{Config, QueuePolicy};
use crate::connection::Connections;
use crate::handlers::NodeRegistry;
use crate::lanes::Lanes;
use crate::session_config::StoredSessionConfig;

/// Everything the handlers share.
pub struct Gateway {
    config: RwLock<Arc<Config>>,
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
    pub lanes: Lanes,
    pub nodes: NodeRegistry,
    pub approvals: Approvals,
    /// Web Push: the VAPID key and client (`crate::push`).
    pub push: crate::push::Push,
    /// The TLS acceptor when `[server.tls]` is set (re-read by `config.reload`).
    pub tls: crate::tls::Tls,
    /// Chat channels' caches: signing keys, reply tokens, wrong pairing codes.
    pub channels: crate::channels::state::ChannelState,
    models: RwLock<Arc<ModelTiers>>,
    ops: RwLock<flynn_ops::Ops>,
    tools: RwLock<Arc<ToolRegistry>>,
    self_ref: OnceLock<Weak<Gateway>>,
}

impl Gateway {
    /// Builds the gateway. Fails when a configured model tier cannot be built.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        store: Store,
    ) -> Result<Arc<Self>, crate::start_error::StartError> {
        let models =
            ModelTiers::build(&config.models).map_err(crate::start_error::StartError::Models)?;
        let tools = ToolRegistry::with_defaults(&config.tools);
        let ops = flynn_ops::Ops::new(
            ops_config(&config),
            crate::logging::buffer(config.ops.log_buffer_lines),
        )
        .map_err(|e| crate::start_error::StartError::Ops(e.0))?;
        let inbound = crate::inbound::InboundBudget::new(
            config.server.max_inbound_bytes,
            config.server.inbound_free_bytes_per_connection,
            std::time::Duration::from_millis(config.server.inbound_wait_timeout_ms),
        );
        let tls = crate::tls::Tls::new(&config.server.tls)?;
        let gateway = Arc::new(Self {
            tls,
            ops: RwLock::new(ops),
            lanes: Lanes::default(),
            nodes: NodeRegistry::default(),
            approvals: Approvals::default(),
            push: crate::push::Push::default(),
            channels: crate::channels::state::ChannelState::default(),
            models: RwLock::new(Arc::new(models)),
            tools: RwLock::new(Arc::new(tools)),
            self_ref: OnceLock::new(),
            config: RwLock::new(Arc::new(config)),
            config_path,
            store,
            started: Instant::now(),
            connections: Arc::default(),
            limiter: FailureLimiter::default(),
            unauthenticated: Arc::default(),
            inbound,
            shutdown: CancellationToken::new(),
            shutdown_requested: tokio::sync::Notify::new(),
        });
        let _ = gateway.self_ref.set(Arc::downgrade(&gateway));
        Ok(gateway)
    }

    /// An owning handle, for work that outlives the current call (lane workers).
    pub fn arc(&self) -> Option<Arc<Gateway>> {
        self.self_ref.get().and_then(Weak::upgrade)
    }

    /// The provider of a model tier (the default tier when `None` or unknown).
    pub fn provider(&self, tier: Option<&str>) -> Arc<dyn Provider> {
        let models = self
            .models
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        models.resolve(tier)
    }

    /// The operator views (backends, dependencies, observability, logs).
    pub fn ops(&self) -> flynn_ops::Ops {
        self.ops
            .read()
            .map(|o| o.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The tool registry.
    pub fn tools(&self) -> Arc<ToolRegistry> {
        self.tools
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The folder tools work in.
    pub fn workspace(&self) -> PathBuf {
        let config = self.config();
        config.tools.workspace_dir(&config.data_dir())
    }

    /// The queue policy of a session: its stored overrides over its channel's policy.
    pub async fn queue_policy(&self, session_id: &str) -> Option<QueuePolicy> {
        let (frontend, _) = flynn_store::split_session_id(session_id);
        let base = self.config().queue_policy_for(frontend);
        let stored = self.store.session(session_id).await.ok()?;
        let overrides =
            StoredSessionConfig::parse(stored.as_ref().and_then(|s| s.config.as_deref()));
        Some(overrides.effective_queue(&base))
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Replaces the configuration (already validated by the caller), rebuilding model tiers
    /// and tools first so a bad model section leaves everything as it was.
    pub fn set_config(&self, config: Config) -> Result<(), String> {
        let models = ModelTiers::build(&config.models)
            .map_err(|e| format!("the models section is not usable: {e}"))?;
        // Certificates are re-read on every reload (renewals); unusable files change nothing.
        let tls = crate::tls::load(&config.server.tls).map_err(|e| e.to_string())?;
        // Calls still running keep counting against the (possibly new) per-session limit.
        let tools = self.tools().reconfigured(&config.tools);
        let ops = flynn_ops::Ops::new(
            ops_config(&config),
            crate::logging::buffer(config.ops.log_buffer_lines),
        )
        .map_err(|e| format!("the ops section is not usable: {}", e.0))?;
        if let Ok(mut o) = self.ops.write() {
            *o = ops;
        }
        if let Ok(mut m) = self.models.write() {
            *m = Arc::new(models);
        }
        self.tls.set(tls);
        if let Ok(mut t) = self.tools.write() {
            *t = Arc::new(tools);
        }
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
        Ok(())
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// The ops configuration with the known local backends (Ollama, llama.cpp) present even when
/// not configured, so `system.localBackends` lists them "configured or not" (the spec); the
/// handler marks the unconfigured ones `configured: false`.
fn ops_config(config: &Config) -> flynn_ops::OpsConfig {
    let mut ops = config.ops.clone();
    for provider in [
        flynn_ops::BackendProvider::Ollama,
        flynn_ops::BackendProvider::Llamacpp,
    ] {
        if !ops
            .local_backends
            .iter()
            .any(|b| b.provider == provider || b.id() == provider.as_str())
        {
            ops.local_backends
                .push(flynn_ops::LocalBackendConfig::new(provider));
        }
    }
    ops
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The transport's view of the gateway: requests go to the handlers (`impl Handler for
/// Gateway`), and a closed connection releases what it held.
impl crate::connection::ConnectionService for Gateway {
    fn dispatch<'s>(
        &'s self,
        call: flynn_protocol::wire::Call<crate::connection::ConnectionState>,
        method: flynn_protocol::Method,
        params: Option<&serde_json::value::RawValue>,
    ) -> flynn_protocol::wire::Dispatched<'s> {
        flynn_protocol::dispatch(self, call, method, params)
    }

    async fn on_disconnect(&self, connection: &crate::connection::ConnectionState) {
        crate::handlers::on_disconnect(self, connection).await;
    }
}
