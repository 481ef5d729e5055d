//! The sections besides `[server]` that the gateway itself defines: `[storage]`, `[pairing]`,
//! `[presence]`, `[canvas]`, `[logging]` (`[queue]` and `[agent]` belong to the agent,
//! `flynn_agent::config`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[storage]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (default: $XDG_DATA_HOME/flynn, else ~/.local/share/flynn).
    pub data_dir: Option<PathBuf>,
}

/// `[pairing]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PairingConfig {
    pub ttl_seconds: u64,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self { ttl_seconds: 300 }
    }
}

/// `[presence]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// A sender is online when last seen within this many seconds.
    pub online_threshold_seconds: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            online_threshold_seconds: 300,
        }
    }
}

/// `[canvas]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CanvasConfig {
    /// Largest artifact (content and metadata as JSON, title and type), in bytes.
    pub max_artifact_bytes: usize,
    pub max_artifacts_per_session: u32,
}

impl Default for CanvasConfig {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 256 * 1024,
            max_artifacts_per_session: 200,
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter, e.g. `info` or `flynn_gateway=debug`. RUST_LOG overrides it.
    pub level: String,
    /// `text` (one line per event; ANSI colours only when stderr is a terminal and NO_COLOR is
    /// unset) or `json` (one JSON object per line, for log shippers). Read at start.
    pub format: LogFormat,
}

/// The format of the daemon's log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}
