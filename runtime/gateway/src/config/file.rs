//! The file's root table ([`Config`]), reading it, environment overrides for its secrets, and
//! what is derived from it (the data directory, a channel's queue policy, the JSON Schema).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sections::{CanvasConfig, LoggingConfig, PairingConfig, PresenceConfig, StorageConfig};
use super::server::ServerConfig;
use super::{AgentConfig, QueueConfig, QueuePolicy};
use crate::env_secrets::{env_secret, kept_env};

/// Environment variable holding `server.token` (overrides the file, so the secret can stay out
/// of it).
pub const TOKEN_ENV: &str = "FLYNN_SERVER_TOKEN";

/// The variable a model tier's API key is read from: `api_key_env`, else Anthropic's default.
fn api_key_env_name(tier: &flynn_models::ProviderConfig) -> Option<&str> {
    match (&tier.api_key_env, tier.kind) {
        (Some(name), _) => Some(name),
        (None, flynn_models::ProviderKind::Anthropic) => Some(flynn_models::ANTHROPIC_KEY_ENV),
        (None, _) => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub queue: QueueConfig,
    pub agent: AgentConfig,
    pub pairing: PairingConfig,
    pub presence: PresenceConfig,
    pub canvas: CanvasConfig,
    pub logging: LoggingConfig,
    /// `[push]`: Web Push for the web chat (`crate::push`).
    pub push: crate::push::PushConfig,
    /// `[channels.<name>]`: Teams, Google Chat, BlueBubbles, Gmail push (`crate::channels`).
    pub channels: crate::channels::ChannelsConfig,
    /// `[models]`: `default_tier` and `[models.tiers.<name>]` (embedded, openai, anthropic).
    pub models: flynn_models::ModelsConfig,
    /// `[tools]`: workspace, `shell.exec` policy, file tools.
    pub tools: flynn_tools::ToolsConfig,
    /// `[ops]`: local backends, docker-compose dependencies, observability, logs.
    pub ops: flynn_ops::OpsConfig,
    /// `[webhooks.<name>]`: hooks served at `POST /webhooks/<name>` (see `crate::webhooks`).
    pub webhooks: BTreeMap<String, crate::webhooks::WebhookConfig>,
}

impl Config {
    /// Reads and validates a config file. A missing file is an error here; "no config" is
    /// `Config::default()`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Applies environment overrides for secrets.
    pub fn with_env(mut self) -> Self {
        if let Some(token) = env_secret(TOKEN_ENV)
            && !token.is_empty()
        {
            self.server.token = Some(token);
        }
        // The providers read `api_key_env` from the live environment, which no longer holds
        // the keys the daemon removed at start: hand them the kept copies (shown as *** by
        // config.get, like the token). A key written in the file wins, as before.
        if let Some(kept) = kept_env() {
            for tier in self.models.tiers.values_mut() {
                if tier
                    .api_key
                    .as_ref()
                    .is_some_and(|k| !k.expose().is_empty())
                {
                    continue;
                }
                let key = api_key_env_name(tier)
                    .and_then(|name| kept.get(name))
                    .map(|value| value.trim())
                    .filter(|value| !value.is_empty());
                if let Some(key) = key {
                    tier.api_key = Some(flynn_models::Secret::new(key));
                }
            }
        }
        self
    }

    /// Which of the variables `present` (names in the environment) hold this configuration's
    /// secrets: FLYNN_SERVER_TOKEN, each model tier's API key variable (`api_key_env`, and
    /// ANTHROPIC_API_KEY), `push.vapid_private_key_env`, and every one `tools.shell.hide_env`
    /// matches. The daemon takes these out of its environment at start.
    pub fn secret_env_names<'a>(
        &self,
        present: impl IntoIterator<Item = &'a str>,
    ) -> std::collections::BTreeSet<String> {
        let keys: Vec<&str> = self
            .models
            .tiers
            .values()
            .filter_map(api_key_env_name)
            .chain([flynn_models::ANTHROPIC_KEY_ENV])
            .chain(
                self.server
                    .tokens
                    .iter()
                    .filter_map(|t| t.token_env.as_deref()),
            )
            .chain(
                self.webhooks
                    .values()
                    .flat_map(crate::webhooks::WebhookConfig::secret_env_names),
            )
            .chain(self.push.vapid_private_key_env.as_deref())
            .chain(self.channels.secret_env_names())
            .collect();
        present
            .into_iter()
            .filter(|name| {
                *name == TOKEN_ENV || keys.contains(name) || self.tools.shell.hides_env(name)
            })
            .map(str::to_owned)
            .collect()
    }

    /// request must present one.
    pub fn has_credentials(&self) -> bool {
        self.server.token.is_some() || !self.server.tokens.is_empty()
    }

    /// The queue policy of a channel (frontend), before per-session overrides.
    pub fn queue_policy_for(&self, frontend: &str) -> QueuePolicy {
        self.queue.policy_for(frontend)
    }

    /// The data directory: configured, else the XDG data home.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.storage.data_dir {
            return dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("flynn");
        }
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/flynn"),
            None => PathBuf::from("flynn-data"),
        }
    }

    /// The JSON Schema of the config file.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or(serde_json::Value::Null)
    }
}
