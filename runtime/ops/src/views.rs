//! The results of the seven operator methods, shaped exactly like the protocol document's JSON
//! (camelCase, optional fields omitted when absent). The gateway turns them into its generated
//! types with `serde_json`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A lifecycle action of `system.localBackendControl` / `system.dockerDependencyControl`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ControlAction {
    /// Start the service.
    Start,
    /// Restart the service.
    Restart,
    /// Stop the service.
    Stop,
    /// Refresh what the service runs (models or image), then reconcile.
    Update,
}

impl ControlAction {
    /// Every action, in wire order.
    pub const ALL: [ControlAction; 4] = [Self::Start, Self::Restart, Self::Stop, Self::Update];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Update => "update",
        }
    }
}

impl fmt::Display for ControlAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not one of `start`, `restart`, `stop`, `update`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`; valid actions: start, restart, stop, update")]
pub struct UnknownAction(pub String);

impl FromStr for ControlAction {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// `system.localBackends` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackendsResult {
    /// One entry per configured backend.
    pub backends: Vec<LocalBackend>,
}

/// Status of one local backend (a systemd user unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackend {
    /// Id used by `system.localBackendControl`.
    pub id: String,
    /// `ollama` or `llamacpp`.
    pub provider: String,
    /// Display name.
    pub name: String,
    /// systemd unit, e.g. `ollama.service`.
    pub unit: String,
    /// Always true: only configured backends are listed.
    pub configured: bool,
    /// systemd LoadState; `unknown` when systemctl could not be asked.
    pub load_state: String,
    /// systemd ActiveState; `unavailable` when systemctl could not be asked.
    pub active_state: String,
    /// systemd SubState; `unknown` when systemctl could not be asked.
    pub sub_state: String,
    /// systemd UnitFileState; omitted when systemd reports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_file_state: Option<String>,
    /// Unit description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Main process id; omitted when the unit is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// systemd Result of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// One line, in the style of `systemctl status`: `active (running)`.
    pub status_text: String,
    /// Actions `system.localBackendControl` accepts for this backend now.
    pub available_actions: Vec<ControlAction>,
    /// Why the status could not be read (systemctl missing, failing or too slow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `system.localBackendControl` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackendControlResult {
    /// The backend acted on.
    pub backend: String,
    /// The action that ran.
    pub action: ControlAction,
    /// Status after the action.
    pub status: LocalBackendState,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Short status of a backend after a control action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackendState {
    /// Backend id.
    pub id: String,
    /// systemd ActiveState.
    pub active_state: String,
    /// systemd SubState.
    pub sub_state: String,
    /// One-line status.
    pub status_text: String,
}

/// `system.dockerDependencies` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerDependenciesResult {
    /// One entry per compose service except Flynn's own.
    pub dependencies: Vec<DockerDependency>,
}

/// Status of one docker-compose dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerDependency {
    /// Id used by `system.dockerDependencyControl` (see [`crate::compose`] for the rule).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Compose service name.
    pub service: String,
    /// Always true: the service is in Flynn's compose file.
    pub configured: bool,
    /// Container state (`running`, `exited`, `restarting`, `paused`, `created`, `dead`),
    /// `missing` when the service has no container, `unavailable` when docker failed.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, `none` (no health check or no container),
    /// `unknown` when docker failed.
    pub health: String,
    /// Docker's status line (`Up 4 minutes (healthy)`).
    pub status_text: String,
    /// Container name; omitted when no container exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Actions `system.dockerDependencyControl` accepts now.
    pub available_actions: Vec<ControlAction>,
    /// Why the state could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `system.dockerDependencyControl` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerDependencyControlResult {
    /// The dependency acted on.
    pub dependency: String,
    /// The action that ran.
    pub action: ControlAction,
    /// Status after the action.
    pub status: DockerDependencyState,
    /// What was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Short status of a dependency after a control action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerDependencyState {
    /// Dependency id.
    pub id: String,
    /// Container state.
    pub state: String,
    /// Container health.
    pub health: String,
    /// One-line status: `running (healthy)`.
    pub status_text: String,
}

/// `system.observabilitySources` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySourcesResult {
    /// The daemon, then each local backend, then each docker dependency.
    pub sources: Vec<ObservabilitySource>,
}

/// A service the dashboard can chart and read logs from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySource {
    /// `systemd:flynn`, `systemd:<backend id>` or `docker:<dependency id>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `systemd_system` (the daemon), `local_backend` or `docker_dependency`.
    pub kind: String,
    /// `systemd_system`, `systemd_user` or `docker_compose`.
    pub runtime: String,
    /// `running`, `stopped`, `failed` or `unknown`.
    pub status: String,
    /// True when the sampler records points for it.
    pub graph_capable: bool,
    /// True when `system.serviceLogs` can read its logs.
    pub log_capable: bool,
}

/// `system.observabilitySeries` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySeriesResult {
    /// When the response was built (epoch ms).
    pub generated_at: u64,
    /// Window used.
    pub window_minutes: u32,
    /// Bucket width used.
    pub bucket_seconds: u32,
    /// One series per requested source.
    pub series: Vec<ObservabilitySeries>,
}

/// The bucketed points of one source, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySeries {
    /// Source id.
    pub source_id: String,
    /// Points inside the window.
    pub points: Vec<ObservabilityPoint>,
}

/// One sample of a source (see [`crate::observability`] for the code tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilityPoint {
    /// Sample time (epoch ms).
    pub ts: u64,
    /// 0 unknown, 1 stopped/failed, 2 starting/restarting, 3 running.
    pub state_code: u8,
    /// 0 unknown or no health check, 1 unhealthy, 2 healthy.
    pub health_code: u8,
    /// Error-level log lines since the previous sample.
    pub error_count: u64,
    /// Restarts observed since sampling began.
    pub restart_count: u64,
}

/// `system.serviceLogs` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLogsResult {
    /// The source read.
    pub source_id: String,
    /// When the logs were read (epoch ms).
    pub fetched_at: u64,
    /// True when masking changed at least one line.
    pub redacted: bool,
    /// True when more lines matched than were returned, or a line was cut.
    pub truncated: bool,
    /// Lines, oldest first, masked.
    pub lines: Vec<ServiceLogLine>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLogLine {
    /// Time of the line (epoch ms).
    pub ts: u64,
    /// Level.
    pub level: LogLevel,
    /// The text, after masking.
    pub text: String,
}

/// Level of a log line as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Debug or trace.
    Debug,
    /// Informational (also notice).
    Info,
    /// Warning.
    Warn,
    /// Error, critical, alert, emergency, fatal, panic.
    Error,
    /// The line carried no level.
    Unknown,
}

impl LogLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}
