//! The set of tools one gateway offers. The agent loop and the `tools.list` / `tools.execute`
//! methods use the same registry, so they see the same tools under the same policy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::files::{FILE_LIST, FILE_READ, FILE_WRITE, FileList, FileRead, FileWrite};
use crate::limits::RunCounts;
use crate::shell::{SHELL_EXEC, ShellExec};
use crate::{Tool, ToolContext, ToolDescriptor, ToolError, ToolOutput, ToolsConfig};

/// Tools by name, plus the names of built-in tools switched off in the configuration (so a call
/// to one says how to switch it on instead of "unknown tool"), and the calls each session has
/// running, bounded by `max_concurrent_runs_per_session`.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    /// The descriptors of `tools` in the same order, made once at registration: a descriptor
    /// derives its JSON Schema, and the agent offers the tools on every model call.
    descriptors: Arc<[ToolDescriptor]>,
    disabled: BTreeSet<String>,
    max_runs_per_session: usize,
    running: RunCounts,
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self {
            tools: BTreeMap::new(),
            descriptors: Arc::from([]),
            disabled: BTreeSet::new(),
            max_runs_per_session: crate::DEFAULT_MAX_CONCURRENT_RUNS_PER_SESSION,
            running: RunCounts::default(),
        }
    }
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .field("disabled", &self.disabled)
            .field("max_runs_per_session", &self.max_runs_per_session)
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in tools (`shell.exec`, `file.read`, `file.write`, `file.list`) that `config`
    /// enables.
    pub fn with_defaults(config: &ToolsConfig) -> Self {
        let mut registry =
            Self::new().with_max_runs_per_session(config.max_concurrent_runs_per_session);
        if config.shell.enabled {
            registry.register(Arc::new(ShellExec::new(&config.shell)));
        } else {
            registry.disabled.insert(SHELL_EXEC.to_owned());
        }
        if config.files.enabled {
            registry.register(Arc::new(FileRead::new(&config.files)));
            registry.register(Arc::new(FileWrite::new(&config.files)));
            registry.register(Arc::new(FileList::new(&config.files)));
        } else {
            for name in [FILE_READ, FILE_WRITE, FILE_LIST] {
                registry.disabled.insert(name.to_owned());
            }
        }
        registry
    }

    /// The registry `config` describes (like [`ToolRegistry::with_defaults`]) that keeps
    /// counting the calls still running under this one, for a configuration reload: a session
    /// does not get a fresh set of slots next to the runs it already has going.
    pub fn reconfigured(&self, config: &ToolsConfig) -> Self {
        Self {
            running: self.running.clone(),
            ..Self::with_defaults(config)
        }
    }

    /// Sets how many calls one session may have running at once (at least 1); a call beyond it
    /// is refused with [`ToolError::Busy`].
    pub fn with_max_runs_per_session(mut self, limit: usize) -> Self {
        self.max_runs_per_session = limit.max(1);
        self
    }

    /// Adds a tool, replacing one of the same name.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let descriptor = tool.descriptor();
        let name = descriptor.name.clone();
        self.disabled.remove(&name);
        self.tools.insert(name.clone(), tool);
        let mut descriptors: Vec<ToolDescriptor> = self
            .descriptors
            .iter()
            .filter(|d| d.name != name)
            .cloned()
            .collect();
        // Sorted by name, as `tools` iterates.
        let at = descriptors.partition_point(|d| d.name < name);
        descriptors.insert(at, descriptor);
        self.descriptors = descriptors.into();
    }

    /// Names of the available tools, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Descriptors of the available tools, sorted by name.
    pub fn list(&self) -> Vec<ToolDescriptor> {
        self.descriptors.to_vec()
    }

    /// [`ToolRegistry::list`], shared: the same allocation until a tool is registered.
    pub fn descriptors(&self) -> Arc<[ToolDescriptor]> {
        self.descriptors.clone()
    }

    /// The tool of that name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).cloned()
    }

    /// Runs tool `name` with `args`. Errors: [`ToolError::NotFound`] listing the available
    /// names, [`ToolError::Denied`] for a tool switched off in the configuration or refused by
    /// its policy, [`ToolError::Busy`] when the session (`cx.session_id`) already has
    /// `max_concurrent_runs_per_session` calls running, [`ToolError::InvalidArgs`],
    /// [`ToolError::Cancelled`], [`ToolError::Failed`].
    pub async fn execute(
        &self,
        name: &str,
        args: Value,
        cx: ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let Some(tool) = self.tools.get(name) else {
            if self.disabled.contains(name) {
                let section = if name == SHELL_EXEC { "shell" } else { "files" };
                return Err(ToolError::Denied {
                    tool: name.to_owned(),
                    reason: format!(
                        "the tool is switched off in the configuration; set tools.{section}.enabled = true to offer it"
                    ),
                });
            }
            return Err(ToolError::NotFound {
                name: name.to_owned(),
                available: self.names(),
            });
        };
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Cancelled {
                tool: name.to_owned(),
            });
        }
        let session = cx.session_id.clone();
        // Held until the call returns or its future is dropped.
        let _slot = self
            .running
            .try_acquire(&session, self.max_runs_per_session)
            .map_err(|running| {
                tracing::warn!(
                    %session, tool = name, running, limit = self.max_runs_per_session,
                    "tool call refused: the session is at tools.max_concurrent_runs_per_session"
                );
                ToolError::Busy {
                    tool: name.to_owned(),
                    session_id: session.clone(),
                    running,
                    limit: self.max_runs_per_session,
                }
            })?;
        let started = Instant::now();
        let result = tool.execute(args, cx).await;
        let elapsed_ms = started.elapsed().as_millis();
        match &result {
            Ok(output) => tracing::info!(
                %session, tool = name, elapsed_ms, success = output.success,
                truncated = output.truncated, "tool call finished"
            ),
            Err(error) => {
                tracing::info!(%session, tool = name, elapsed_ms, %error, "tool call refused or aborted")
            }
        }
        result
    }
}
