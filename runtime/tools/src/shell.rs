//! `shell.exec`: runs a command line with the configured shell inside the workspace, under the
//! allow/deny policy, a timeout and an output cap (see [`crate::process`] for the mechanics).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::policy::CommandPolicy;
use crate::process::{self, Ending};
use crate::{ShellConfig, ToolContext, ToolError, ToolOutput, TypedTool, workspace};

/// Name of the tool.
pub const SHELL_EXEC: &str = "shell.exec";

/// Arguments of `shell.exec`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShellExecInput {
    /// Command line to run with `sh -c`; stdout and stderr are returned together.
    pub command: String,
    /// Working directory relative to the workspace (default: the workspace itself); it must exist.
    pub cwd: Option<String>,
    /// Kill the command (and everything it started) after this many milliseconds.
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// The `shell.exec` tool.
#[derive(Debug, Clone)]
pub struct ShellExec {
    config: ShellConfig,
    policy: CommandPolicy,
}

impl ShellExec {
    pub fn new(config: &ShellConfig) -> Self {
        let mut config = config.clone();
        if config.default_timeout_ms > config.max_timeout_ms {
            tracing::warn!(
                default_timeout_ms = config.default_timeout_ms,
                max_timeout_ms = config.max_timeout_ms,
                "tools.shell.default_timeout_ms exceeds max_timeout_ms; using max_timeout_ms"
            );
            config.default_timeout_ms = config.max_timeout_ms;
        }
        let policy = CommandPolicy::new(&config.allow, &config.deny);
        Self { config, policy }
    }

    fn timeout(&self, requested: Option<u64>) -> Result<Duration, ToolError> {
        let ms = match requested {
            None => self.config.default_timeout_ms.max(1),
            Some(0) => {
                return Err(ToolError::invalid(
                    SHELL_EXEC,
                    "timeoutMs",
                    "must be at least 1",
                ));
            }
            Some(ms) if ms > self.config.max_timeout_ms => {
                return Err(ToolError::invalid(
                    SHELL_EXEC,
                    "timeoutMs",
                    format!(
                        "{ms} exceeds the maximum of {} (tools.shell.max_timeout_ms); ask for less",
                        self.config.max_timeout_ms
                    ),
                ));
            }
            Some(ms) => ms,
        };
        Ok(Duration::from_millis(ms))
    }

    /// The error to report for how the command ended (`None` for success); a cancelled run is
    /// the call's error.
    fn ending_error(&self, ending: Ending, timeout: Duration) -> Result<Option<String>, ToolError> {
        Ok(match ending {
            Ending::Cancelled => return Err(ToolError::cancelled(SHELL_EXEC)),
            Ending::TimedOut => Some(format!(
                "timed out after {} ms and was killed with everything it started; ask for a longer \
                 timeoutMs (at most {}) or make the command finish sooner",
                timeout.as_millis(),
                self.config.max_timeout_ms
            )),
            Ending::Exited(status) if status.success() => None,
            Ending::Exited(status) => Some(process::describe_status(status)),
        })
    }
}

/// The workspace root (created if missing), or `cwd` inside it, which must be a directory.
async fn working_dir(workspace: &Path, cwd: Option<&str>) -> Result<PathBuf, ToolError> {
    let root = workspace::ensure_root(SHELL_EXEC, workspace).await?;
    let Some(cwd) = cwd else {
        return Ok(root);
    };
    let dir = workspace::resolve(SHELL_EXEC, &root, cwd, "cwd").await?;
    if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
        return Err(ToolError::invalid(
            SHELL_EXEC,
            "cwd",
            format!(
                "`{cwd}` is not a directory in the workspace; create it first or leave cwd out"
            ),
        ));
    }
    Ok(dir)
}

impl TypedTool for ShellExec {
    type Input = ShellExecInput;

    fn name(&self) -> &str {
        SHELL_EXEC
    }

    fn description(&self) -> String {
        format!(
            "Execute a shell command with `{} -c` in the workspace folder (or `cwd` inside it) and \
             return its combined stdout and stderr (at most {} bytes; more is marked truncated). \
             stdin is empty. The command and everything it starts are killed after `timeoutMs` \
             (default {} ms, at most {} ms).{}",
            self.config.shell.display(),
            self.config.output_cap_bytes,
            self.config.default_timeout_ms,
            self.config.max_timeout_ms,
            if self.config.allow.is_empty() {
                String::new()
            } else {
                format!(
                    " Only these commands may run: {}.",
                    self.config.allow.join(", ")
                )
            }
        )
    }

    async fn run(&self, input: ShellExecInput, cx: ToolContext) -> Result<ToolOutput, ToolError> {
        if input.command.trim().is_empty() {
            return Err(ToolError::invalid(
                SHELL_EXEC,
                "command",
                "is empty; give a command line",
            ));
        }
        self.policy
            .check(&input.command)
            .map_err(|reason| ToolError::denied(SHELL_EXEC, reason))?;
        let timeout = self.timeout(input.timeout_ms)?;
        let cwd = working_dir(&cx.workspace, input.cwd.as_deref()).await?;
        if cx.cancel.is_cancelled() {
            return Err(ToolError::cancelled(SHELL_EXEC));
        }

        let started = Instant::now();
        let outcome = process::run(process::Spec {
            shell: &self.config.shell,
            command: &input.command,
            cwd: &cwd,
            env: &self.config,
            timeout,
            output_cap: self.config.output_cap_bytes,
            kill_background_on_exit: self.config.kill_background_on_exit,
            cancel: &cx.cancel,
        })
        .await
        .map_err(|error| {
            ToolError::failed(
                SHELL_EXEC,
                format!(
                    "cannot start `{}`: {error}; check tools.shell.shell in the configuration",
                    self.config.shell.display()
                ),
            )
        })?;
        let elapsed_ms = started.elapsed().as_millis();
        tracing::debug!(
            session = %cx.session_id,
            pid = outcome.pid,
            elapsed_ms,
            ending = ?outcome.ending,
            output_bytes = outcome.output.len(),
            truncated = outcome.truncated,
            "shell.exec finished"
        );
        let error = self.ending_error(outcome.ending, timeout)?;
        Ok(ToolOutput {
            success: error.is_none(),
            output: process::into_text(outcome.output, outcome.truncated),
            error,
            truncated: outcome.truncated,
        })
    }
}
