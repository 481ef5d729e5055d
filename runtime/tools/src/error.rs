//! The one error type of every tool and of the registry. Each message says what went wrong and
//! what the caller (a client of `tools.execute`, or the model in an agent run) should do next.
//!
//! Failures of the work itself (a non-zero exit code, a missing file) are not errors: they come
//! back as a [`crate::ToolOutput`] with `success: false`, so the model can read and react to them.
//! `ToolError` is for calls that could not be carried out at all.

/// Why a tool call could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// No tool of that name is registered.
    #[error(
        "unknown tool `{name}`; available tools: {}. Use one of these names (tools.list gives their input schemas)",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    NotFound {
        name: String,
        available: Vec<String>,
    },

    /// The arguments do not match the tool's input schema (or break one of its limits).
    /// `path` is the field path inside `args` (`.` for the object itself).
    #[error(
        "invalid arguments for `{tool}` at `{path}`: {message}. Fix the arguments to match the tool's inputSchema"
    )]
    InvalidArgs {
        tool: String,
        path: String,
        message: String,
    },

    /// The configured policy refused the call; nothing was run. `reason` says which rule.
    #[error("`{tool}` refused: {reason}")]
    Denied { tool: String, reason: String },

    /// The session already has `limit` tool calls running
    /// (`tools.max_concurrent_runs_per_session`); nothing was started.
    #[error(
        "`{tool}` refused: session `{session_id}` already has {running} tool runs in progress and \
         the limit is {limit} (tools.max_concurrent_runs_per_session); wait for one to finish, or \
         raise the limit"
    )]
    Busy {
        tool: String,
        session_id: String,
        running: usize,
        limit: usize,
    },

    /// The call's cancellation token fired; every process it started has been killed.
    #[error("`{tool}` was cancelled before it finished; any processes it started were killed")]
    Cancelled { tool: String },

    /// The gateway could not carry out the call (for example the shell could not be started or
    /// the workspace folder could not be created). `message` names the cause.
    #[error("`{tool}` could not run: {message}")]
    Failed { tool: String, message: String },
}

impl ToolError {
    /// Name of the tool the error is about (the requested name for [`ToolError::NotFound`]).
    pub fn tool(&self) -> &str {
        match self {
            ToolError::NotFound { name, .. } => name,
            ToolError::InvalidArgs { tool, .. }
            | ToolError::Denied { tool, .. }
            | ToolError::Busy { tool, .. }
            | ToolError::Cancelled { tool }
            | ToolError::Failed { tool, .. } => tool,
        }
    }

    pub(crate) fn invalid(tool: &str, path: &str, message: impl Into<String>) -> Self {
        ToolError::InvalidArgs {
            tool: tool.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn denied(tool: &str, reason: impl Into<String>) -> Self {
        ToolError::Denied {
            tool: tool.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn failed(tool: &str, message: impl Into<String>) -> Self {
        ToolError::Failed {
            tool: tool.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn cancelled(tool: &str) -> Self {
        ToolError::Cancelled {
            tool: tool.to_owned(),
        }
    }
}
