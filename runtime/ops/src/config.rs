//! The `[ops]` section of the gateway's TOML configuration.
//!
//! Every field has a default, so an empty `[ops]` (or none at all) is valid: no local backends,
//! no compose file, tools found on `PATH`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DAEMON_NAME;

/// Why an `[ops]` section cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [ops] configuration: {0}")]
pub struct OpsConfigError(pub String);

/// `[ops]`: operator views (local backends, docker dependencies, observability, logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// Local LLM backend daemons run as systemd user units (`[[ops.local_backends]]`).
    pub local_backends: Vec<LocalBackendConfig>,
    /// The docker-compose project holding Flynn's dependencies (`[ops.docker]`).
    pub docker: DockerConfig,
    /// Paths or names of the external tools (`[ops.binaries]`).
    pub binaries: BinariesConfig,
    /// Deadline for status and log commands, in seconds (default 15).
    pub command_timeout_secs: u64,
    /// Deadline for `update` actions (image or model pulls), in seconds (default 1800).
    pub update_timeout_secs: u64,
    /// How many of the daemon's own log lines are kept in memory (default 2000).
    pub log_buffer_lines: usize,
    /// Longest log line returned by `system.serviceLogs`, in characters; longer lines are cut
    /// and the response is marked `truncated` (default 4096).
    pub max_log_line_chars: usize,
    /// Seconds between two observability samples (default 30).
    pub sampler_interval_secs: u64,
    /// Samples kept per source; the oldest is dropped beyond this (default 2880: one day at
    /// 30 s).
    pub ring_capacity: usize,
    /// Count error lines of backends and dependencies at each sample (one `journalctl` or
    /// `docker logs` call per source and sample). Off: their `errorCount` stays 0.
    pub sample_error_counts: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            local_backends: Vec::new(),
            docker: DockerConfig::default(),
            binaries: BinariesConfig::default(),
            command_timeout_secs: 15,
            update_timeout_secs: 1800,
            log_buffer_lines: 2000,
            max_log_line_chars: 4096,
            sampler_interval_secs: 30,
            ring_capacity: 2880,
            sample_error_counts: true,
        }
    }
}

/// Which kind of local backend a unit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendProvider {
    /// Ollama (`ollama serve`); `update` pulls the configured models.
    Ollama,
    /// llama.cpp's `llama-server`; `update` restarts the unit.
    Llamacpp,
}

impl BackendProvider {
    /// The provider id as it appears on the wire (`ollama`, `llamacpp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Llamacpp => "llamacpp",
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            Self::Ollama => "Ollama",
            Self::Llamacpp => "llama.cpp",
        }
    }

    fn default_unit(self) -> &'static str {
        match self {
            Self::Ollama => "ollama.service",
            Self::Llamacpp => "llama-server.service",
        }
    }
}

/// One `[[ops.local_backends]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalBackendConfig {
    /// Id used by `system.localBackendControl` (default: the provider, `ollama` / `llamacpp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `ollama` or `llamacpp`.
    pub provider: BackendProvider,
    /// Display name (default `Ollama` / `llama.cpp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// systemd user unit (default `ollama.service` / `llama-server.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Models `update` pulls with `ollama pull` (ollama only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// `OLLAMA_HOST` for those pulls when the server is not on the default address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_host: Option<String>,
}

impl LocalBackendConfig {
    /// A backend of `provider` with every default.
    pub fn new(provider: BackendProvider) -> Self {
        Self {
            id: None,
            provider,
            name: None,
            unit: None,
            models: Vec::new(),
            ollama_host: None,
        }
    }

    /// The effective id.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(self.provider.as_str())
    }

    /// The effective display name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.provider.default_name())
    }

    /// The effective unit name.
    pub fn unit(&self) -> &str {
        self.unit.as_deref().unwrap_or(self.provider.default_unit())
    }
}

/// `[ops.docker]`: the compose project of Flynn's dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Path of `docker-compose.yml`; unset means no docker dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_file: Option<PathBuf>,
    /// Compose project name (`docker compose -p`); unset lets compose derive it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// Flynn's own service in that file, which is not listed (default `flynn`).
    pub self_service: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            compose_file: None,
            project_name: None,
            self_service: "flynn".to_owned(),
        }
    }
}

/// `[ops.binaries]`: where the external tools are. Plain names are looked up on `PATH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BinariesConfig {
    /// `systemctl` (default: found on PATH).
    pub systemctl: PathBuf,
    /// `journalctl` (default: found on PATH).
    pub journalctl: PathBuf,
    /// `docker` with the compose plugin (default: found on PATH).
    pub docker: PathBuf,
    /// `ollama` (default: found on PATH).
    pub ollama: PathBuf,
}

impl Default for BinariesConfig {
    fn default() -> Self {
        Self {
            systemctl: PathBuf::from("systemctl"),
            journalctl: PathBuf::from("journalctl"),
            docker: PathBuf::from("docker"),
            ollama: PathBuf::from("ollama"),
        }
    }
}

impl OpsConfig {
    /// Checks what serde cannot: unique ids, names that cannot be taken for command-line
    /// options, non-zero limits.
    pub fn validate(&self) -> Result<(), OpsConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for backend in &self.local_backends {
            let id = backend.id();
            if !is_plain_id(id) {
                return Err(OpsConfigError(format!(
                    "local backend id `{id}` must be letters, digits, `-`, `_` or `.` and not start with `-`"
                )));
            }
            if id == DAEMON_NAME {
                return Err(OpsConfigError(format!(
                    "local backend id `{DAEMON_NAME}` is reserved for the daemon's own observability source; pick another id"
                )));
            }
            if !seen.insert(id.to_owned()) {
                return Err(OpsConfigError(format!(
                    "local backend id `{id}` is used twice; give each [[ops.local_backends]] entry its own id"
                )));
            }
            if !is_safe_argument(backend.unit()) {
                return Err(OpsConfigError(format!(
                    "unit `{}` of local backend `{id}` must be a unit name such as `ollama.service`",
                    backend.unit()
                )));
            }
            for model in &backend.models {
                if !is_safe_argument(model) {
                    return Err(OpsConfigError(format!(
                        "model `{model}` of local backend `{id}` must be a model name such as `llama3.2:3b`"
                    )));
                }
            }
            if backend.provider != BackendProvider::Ollama
                && (!backend.models.is_empty() || backend.ollama_host.is_some())
            {
                return Err(OpsConfigError(format!(
                    "local backend `{id}`: `models` and `ollama_host` apply to provider \"ollama\" only"
                )));
            }
        }
        let bad_project = self
            .docker
            .project_name
            .as_deref()
            .filter(|project| !is_safe_argument(project));
        if let Some(project) = bad_project {
            return Err(OpsConfigError(format!(
                "docker project_name `{project}` must be a compose project name"
            )));
        }
        for (name, value) in [
            ("command_timeout_secs", self.command_timeout_secs),
            ("update_timeout_secs", self.update_timeout_secs),
            ("sampler_interval_secs", self.sampler_interval_secs),
        ] {
            if value == 0 {
                return Err(OpsConfigError(format!("{name} must be at least 1")));
            }
        }
        for (name, value) in [
            ("log_buffer_lines", self.log_buffer_lines),
            ("ring_capacity", self.ring_capacity),
            ("max_log_line_chars", self.max_log_line_chars),
        ] {
            if value == 0 {
                return Err(OpsConfigError(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// Ids appear in source ids (`systemd:<id>`) and error messages: keep them simple.
pub(crate) fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A value passed as a positional argument must not be mistaken for an option or split.
pub(crate) fn is_safe_argument(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}
