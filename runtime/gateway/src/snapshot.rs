//! The running configuration and everything built from it (model tiers, tools, ops views, the
//! agent's settings), as one snapshot. `config.reload` builds a whole new snapshot and swaps it
//! in atomically ([`arc_swap::ArcSwap`]): a reader sees the old configuration or the new one,
//! never a mix, and reading takes no lock.

use std::sync::Arc;

use arc_swap::ArcSwap;
use flynn_agent::deps::{Settings, SettingsSource};
use flynn_models::ModelTiers;
use flynn_tools::ToolRegistry;

use crate::config::Config;

/// One configuration with what is built from it.
pub struct ConfigSnapshot {
    pub config: Arc<Config>,
    /// The agent's slice: `[agent]`, `[queue]`, the model tiers, the tools, the workspace.
    pub agent: Arc<Settings>,
    /// The operator views (backends, dependencies, observability, logs).
    pub ops: flynn_ops::Ops,
}

/// Why a configuration could not become a snapshot (the running one stays).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the models section is not usable: {0}")]
    Models(flynn_models::ProviderError),
    #[error("the ops section is not usable: {0}")]
    Ops(String),
}

impl ConfigSnapshot {
    /// Builds everything `config` describes. `tools`: the registry of the snapshot it replaces,
    /// so that tool calls still running keep counting against the (possibly new) limits.
    pub fn build(config: Config, tools: Option<&ToolRegistry>) -> Result<Self, SnapshotError> {
        let models = ModelTiers::build(&config.models).map_err(SnapshotError::Models)?;
        let tools = match tools {
            Some(current) => current.reconfigured(&config.tools),
            None => ToolRegistry::with_defaults(&config.tools),
        };
        let ops = flynn_ops::Ops::new(
            ops_config(&config),
            crate::logging::buffer(config.ops.log_buffer_lines),
        )
        .map_err(|e| SnapshotError::Ops(e.0))?;
        let agent = Settings {
            agent: config.agent.clone(),
            queue: config.queue.clone(),
            models: Arc::new(models),
            tools: Arc::new(tools),
            workspace: config.tools.workspace_dir(&config.data_dir()),
        };
        Ok(Self {
            config: Arc::new(config),
            agent: Arc::new(agent),
            ops,
        })
    }
}

/// The shared, atomically swapped snapshot (cheap to clone: all clones see each swap).
#[derive(Clone)]
pub struct SharedConfig(Arc<ArcSwap<ConfigSnapshot>>);

impl SharedConfig {
    pub fn new(snapshot: ConfigSnapshot) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(snapshot)))
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<ConfigSnapshot> {
        self.0.load_full()
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.0.load().config.clone()
    }

    /// Replaces the snapshot; readers see the new one from their next read.
    pub fn swap(&self, snapshot: ConfigSnapshot) {
        self.0.store(Arc::new(snapshot));
    }
}

impl SettingsSource for SharedConfig {
    fn settings(&self) -> Arc<Settings> {
        self.0.load().agent.clone()
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
