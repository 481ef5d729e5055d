//! Configuration of providers and model tiers, as embedded in the gateway's config file.
//!
//! Every type derives `Deserialize` and `JsonSchema` (schemars 1) so the gateway can embed them
//! in its own config schema. Unknown keys are rejected so a typo is reported, not ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The built-in deterministic model: no key, no network (see [`crate::EmbeddedProvider`]).
    #[default]
    Embedded,
    /// OpenAI-compatible chat completions: OpenAI, Ollama, llama.cpp server, vLLM.
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// The name used in config files and in [`crate::Provider::name`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// An API key. Never printed: `Debug` and `Serialize` write a placeholder, so configs can be
/// logged and shown to clients without leaking it.
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

/// What [`Secret`] prints and serialises as.
pub const REDACTED: &str = "********";

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The key itself, for the HTTP header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Time limits of one HTTP model call, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection. Default 10 000.
    pub connect_ms: u64,
    /// From sending the request to the response headers and again to the first body chunk (a
    /// local server may load the model first). Default 180 000.
    pub first_byte_ms: u64,
    /// Between two body chunks once the stream runs. Default 60 000.
    pub idle_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 10_000,
            first_byte_ms: 180_000,
            idle_ms: 60_000,
        }
    }
}

impl Timeouts {
    pub(crate) fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms.max(1))
    }
    pub(crate) fn first_byte(&self) -> Duration {
        Duration::from_millis(self.first_byte_ms.max(1))
    }
    pub(crate) fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms.max(1))
    }
}

/// One model provider.
///
/// ```toml
/// kind = "openai"
/// base_url = "http://127.0.0.1:11434/v1"   # Ollama
/// model = "llama3.2"
/// context_window = 32768
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Which API: `embedded` (default), `openai` or `anthropic`.
    #[serde(default)]
    pub kind: ProviderKind,
    /// Model name sent to the API. Required for `openai` and `anthropic`; the embedded model
    /// answers to any name (default `flynn-embedded`).
    #[serde(default)]
    pub model: Option<String>,
    /// API root. Defaults: `https://api.openai.com/v1` for `openai`, `https://api.anthropic.com`
    /// for `anthropic`. Ollama: `http://127.0.0.1:11434/v1`; llama.cpp server and vLLM:
    /// `http://HOST:PORT/v1`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API key. Prefer `api_key_env` so the key stays out of the file.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Environment variable holding the API key, read when the provider is built. Default for
    /// `anthropic`: `ANTHROPIC_API_KEY`; `openai` has none (local servers need no key).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Context window in tokens. Defaults: 8192 for `embedded` and `openai` (conservative: set
    /// the real figure of your model), 200 000 for `anthropic`.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Default cap on generated tokens. `anthropic` needs one and defaults to 4096; `openai`
    /// sends `max_tokens` only when set.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Whether images are sent to the model. Default true.
    #[serde(default)]
    pub accepts_images: Option<bool>,
    /// Time limits of HTTP calls.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// PEM file of extra CA certificates to trust besides the system store (a self-hosted server
    /// behind a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Named model tiers (`default`, `fast`, `smart`, ...), each with its provider; sessions pick a
/// tier by name (`modelTier` in the session config).
///
/// ```toml
/// default_tier = "default"
/// [tiers.default]
/// kind = "embedded"
/// [tiers.smart]
/// kind = "anthropic"
/// model = "claude-sonnet-4-5"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// The tier used when a session names none (or names one that is not configured).
    #[serde(default = "default_tier_name")]
    pub default_tier: String,
    /// Providers by tier name. Empty means one `default` tier with the embedded model.
    #[serde(default)]
    pub tiers: BTreeMap<String, ProviderConfig>,
}

/// The tier name used when none is configured.
pub const DEFAULT_TIER: &str = "default";

fn default_tier_name() -> String {
    DEFAULT_TIER.to_owned()
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            default_tier: default_tier_name(),
            tiers: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let config = ProviderConfig {
            api_key: Some(Secret::new("sk-very-secret")),
            ..ProviderConfig::default()
        };
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("sk-very-secret"), "{json}");
        assert!(json.contains(REDACTED));
    }

    #[test]
    fn parses_from_json_with_defaults_and_rejects_typos() {
        let config: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "openai",
            "base_url": "http://127.0.0.1:11434/v1",
            "model": "llama3.2",
            "api_key": "k",
            "timeouts": { "idle_ms": 5 }
        }))
        .unwrap();
        assert_eq!(config.kind, ProviderKind::Openai);
        assert_eq!(config.api_key.as_ref().map(Secret::expose), Some("k"));
        assert_eq!(config.timeouts.idle_ms, 5);
        assert_eq!(config.timeouts.connect_ms, Timeouts::default().connect_ms);
        let typo = serde_json::from_value::<ProviderConfig>(serde_json::json!({ "modle": "x" }));
        assert!(typo.unwrap_err().to_string().contains("modle"));
        let models: ModelsConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(models, ModelsConfig::default());
    }

    #[test]
    fn schema_describes_the_config() {
        let schema = serde_json::to_value(schemars::schema_for!(ModelsConfig)).unwrap();
        let text = schema.to_string();
        for needle in [
            "default_tier",
            "tiers",
            "api_key_env",
            "first_byte_ms",
            "anthropic",
        ] {
            assert!(text.contains(needle), "schema lacks {needle}: {text}");
        }
    }
}
