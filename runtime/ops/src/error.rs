//! Errors of the operator methods. Each says what was wrong and, for unknown ids or actions,
//! what would have been valid.

use crate::compose::ComposeFileError;
use flynn_protocol::types::ControlAction;

/// Why an operator method could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsError {
    /// `backend` is not an id returned by `system.localBackends`.
    #[error("unknown local backend `{id}`; valid ids: {}", list(valid))]
    UnknownBackend {
        /// The id asked for.
        id: String,
        /// The ids `system.localBackends` returns.
        valid: Vec<String>,
    },
    /// `dependency` is not an id returned by `system.dockerDependencies`.
    #[error("unknown docker dependency `{id}`; valid ids: {}", list(valid))]
    UnknownDependency {
        /// The id asked for.
        id: String,
        /// The ids `system.dockerDependencies` returns.
        valid: Vec<String>,
    },
    /// `sourceId` is not an id returned by `system.observabilitySources`.
    #[error("unknown observability source `{id}`; valid ids: {}", list(valid))]
    UnknownSource {
        /// The id asked for.
        id: String,
        /// The known source ids.
        valid: Vec<String>,
    },
    /// The action is not one the target accepts in its current state.
    #[error(
        "action `{action}` is not available for {target} now (status: {status}); available actions: {}",
        list_actions(available)
    )]
    ActionNotAvailable {
        /// `local backend `ollama`` or `docker dependency `whisper``.
        target: String,
        /// The action asked for.
        action: ControlAction,
        /// The target's status line.
        status: String,
        /// What it accepts now.
        available: Vec<ControlAction>,
    },
    /// The action was accepted but its command failed.
    #[error("{action} of {target} failed: {reason}")]
    ActionFailed {
        /// What was acted on.
        target: String,
        /// The action.
        action: ControlAction,
        /// The command's error (secrets masked).
        reason: String,
    },
    /// The configured compose file cannot be used.
    #[error(transparent)]
    ComposeFile(#[from] ComposeFileError),
    /// A docker source whose service has no container has no logs.
    #[error("{source_id} has no container yet, so it has no logs; start it first")]
    NoContainer {
        /// The source asked for.
        source_id: String,
    },
    /// Reading the logs failed.
    #[error("cannot read the logs of {source_id}: {reason}")]
    LogsUnavailable {
        /// The source asked for.
        source_id: String,
        /// The command's error (secrets masked).
        reason: String,
    },
    /// A parameter is out of range.
    #[error("invalid `{name}`: {reason}")]
    InvalidParams {
        /// The parameter's wire name.
        name: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl OpsError {
    /// True when the request itself was wrong (unknown id, unavailable action, bad parameter):
    /// the gateway answers these as invalid requests, the others as internal errors.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Self::UnknownBackend { .. }
                | Self::UnknownDependency { .. }
                | Self::UnknownSource { .. }
                | Self::ActionNotAvailable { .. }
                | Self::InvalidParams { .. }
                | Self::NoContainer { .. }
        )
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "(none configured)".to_owned()
    } else {
        ids.join(", ")
    }
}

fn list_actions(actions: &[ControlAction]) -> String {
    if actions.is_empty() {
        "(none)".to_owned()
    } else {
        actions
            .iter()
            .map(ControlAction::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
