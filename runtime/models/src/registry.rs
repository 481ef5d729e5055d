//! Turning configuration into providers: one provider per config, and the tier table.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::anthropic::AnthropicProvider;
use crate::config::{DEFAULT_TIER, ModelsConfig, ProviderConfig, ProviderKind, Secret};
use crate::embedded::{EMBEDDED_DEFAULT_CONTEXT_WINDOW, EMBEDDED_MODEL, EmbeddedProvider};
use crate::error::ProviderError;
use crate::openai::OpenAiProvider;
use crate::provider::Provider;

/// Environment variable read for the Anthropic key when `api_key_env` is not set.
pub const ANTHROPIC_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// The key from the config, else from the environment variable it names (or `default_env`).
/// A variable named explicitly but unset is an error; the default one may be missing.
fn resolve_api_key(
    config: &ProviderConfig,
    default_env: Option<&str>,
) -> Result<Option<Secret>, ProviderError> {
    if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose().is_empty()) {
        return Ok(Some(key.clone()));
    }
    let (name, explicit) = match (&config.api_key_env, default_env) {
        (Some(name), _) => (name.as_str(), true),
        (None, Some(name)) => (name, false),
        (None, None) => return Ok(None),
    };
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(Some(Secret::new(value.trim()))),
        _ if explicit => Err(ProviderError::config(format!(
            "the environment variable {name} named by api_key_env is not set; export it with the \
             API key or remove api_key_env"
        ))),
        _ => Ok(None),
    }
}

fn required_model(config: &ProviderConfig, example: &str) -> Result<String, ProviderError> {
    match config.model.as_deref().map(str::trim) {
        Some(model) if !model.is_empty() => Ok(model.to_owned()),
        _ => Err(ProviderError::config(format!(
            "a `{}` provider needs `model`, e.g. model = \"{example}\"",
            config.kind.as_str()
        ))),
    }
}

/// Builds the provider a config describes. Reads the API key from the environment if the config
/// names a variable; validates the URL, the model and the CA file; does not touch the network.
pub fn build_provider(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
    match config.kind {
        ProviderKind::Embedded => {
            let provider = EmbeddedProvider::new(
                config
                    .model
                    .clone()
                    .unwrap_or_else(|| EMBEDDED_MODEL.to_owned()),
                config
                    .context_window
                    .unwrap_or(EMBEDDED_DEFAULT_CONTEXT_WINDOW),
            )
            .with_accepts_images(config.accepts_images.unwrap_or(true))
            .with_max_output_tokens(config.max_output_tokens);
            Ok(Arc::new(provider))
        }
        ProviderKind::Openai => {
            let model = required_model(config, "llama3.2")?;
            let key = resolve_api_key(config, None)?;
            Ok(Arc::new(OpenAiProvider::new(config, model, key)?))
        }
        ProviderKind::Anthropic => {
            let model = required_model(config, "claude-sonnet-4-5")?;
            let key = resolve_api_key(config, Some(ANTHROPIC_KEY_ENV))?.ok_or_else(|| {
                ProviderError::config(format!(
                    "an `anthropic` provider needs an API key: set api_key, or export \
                     {ANTHROPIC_KEY_ENV} (or the variable named by api_key_env)"
                ))
            })?;
            Ok(Arc::new(AnthropicProvider::new(config, model, key)?))
        }
    }
}

/// The providers of every configured tier.
#[derive(Debug, Clone)]
pub struct ModelTiers {
    default_tier: String,
    tiers: BTreeMap<String, Arc<dyn Provider>>,
    /// The largest context window among the tiers.
    largest_window: u64,
}

impl ModelTiers {
    /// Builds every tier; an empty table becomes one `default` tier with the embedded model.
    /// The default tier must exist.
    pub fn build(config: &ModelsConfig) -> Result<Self, ProviderError> {
        let mut tiers = BTreeMap::new();
        if config.tiers.is_empty() {
            tiers.insert(
                DEFAULT_TIER.to_owned(),
                build_provider(&ProviderConfig::default())?,
            );
            return Ok(Self::new(DEFAULT_TIER.to_owned(), tiers));
        }
        for (name, provider) in &config.tiers {
            let built = build_provider(provider).map_err(|error| match error {
                ProviderError::Config { message } => {
                    ProviderError::config(format!("model tier `{name}`: {message}"))
                }
                other => other,
            })?;
            tiers.insert(name.clone(), built);
        }
        if !tiers.contains_key(&config.default_tier) {
            let known: Vec<&str> = tiers.keys().map(String::as_str).collect();
            return Err(ProviderError::config(format!(
                "default_tier `{}` is not among the configured tiers ({}); add it or pick one of them",
                config.default_tier,
                known.join(", ")
            )));
        }
        Ok(Self::new(config.default_tier.clone(), tiers))
    }

    fn new(default_tier: String, tiers: BTreeMap<String, Arc<dyn Provider>>) -> Self {
        let largest_window = tiers.values().map(|p| p.context_window()).max();
        Self {
            default_tier,
            tiers,
            largest_window: largest_window.unwrap_or(EMBEDDED_DEFAULT_CONTEXT_WINDOW),
        }
    }

    /// The largest context window among the tiers: what a session's prompt may hold at most,
    /// whichever tier it uses (an agent turn reads no more history than that).
    pub fn largest_context_window(&self) -> u64 {
        self.largest_window
    }

    /// The provider of a tier, if configured.
    pub fn get(&self, tier: &str) -> Option<Arc<dyn Provider>> {
        self.tiers.get(tier).cloned()
    }

    /// The provider of `tier`, or of the default tier when `tier` is `None` or not configured
    /// (logged, since a session may name a tier that was removed from the config).
    pub fn resolve(&self, tier: Option<&str>) -> Arc<dyn Provider> {
        if let Some(name) = tier {
            if let Some(provider) = self.tiers.get(name) {
                return Arc::clone(provider);
            }
            tracing::warn!(tier = name, default = %self.default_tier, "unknown model tier; using the default tier");
        }
        self.default_provider()
    }

    /// The default tier's provider.
    pub fn default_provider(&self) -> Arc<dyn Provider> {
        match self.tiers.get(&self.default_tier) {
            Some(provider) => Arc::clone(provider),
            // `build` guarantees the default tier exists; keep a working answer regardless.
            None => Arc::new(EmbeddedProvider::default()),
        }
    }

    /// The default tier's name.
    pub fn default_tier(&self) -> &str {
        &self.default_tier
    }

    /// Tier names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tiers.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_one_embedded_default_tier() {
        let tiers = ModelTiers::build(&ModelsConfig::default()).unwrap();
        assert_eq!(tiers.names().collect::<Vec<_>>(), vec!["default"]);
        let provider = tiers.resolve(None);
        assert_eq!(provider.name(), "embedded");
        assert_eq!(provider.context_window(), EMBEDDED_DEFAULT_CONTEXT_WINDOW);
        assert_eq!(
            tiers.largest_context_window(),
            EMBEDDED_DEFAULT_CONTEXT_WINDOW
        );
        assert_eq!(tiers.resolve(Some("nope")).name(), "embedded");
    }

    #[test]
    fn tiers_build_each_kind_and_check_the_default() {
        let config: ModelsConfig = serde_json::from_value(serde_json::json!({
            "default_tier": "fast",
            "tiers": {
                "fast": { "kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2" },
                "smart": { "kind": "anthropic", "model": "claude", "api_key": "sk-test", "context_window": 1000 },
                "toy": { "kind": "embedded", "context_window": 100 }
            }
        }))
        .unwrap();
        let tiers = ModelTiers::build(&config).unwrap();
        assert_eq!(tiers.default_tier(), "fast");
        assert_eq!(tiers.resolve(None).name(), "openai");
        assert_eq!(tiers.resolve(None).model(), "llama3.2");
        assert_eq!(tiers.get("smart").unwrap().context_window(), 1000);
        assert_eq!(tiers.get("toy").unwrap().context_window(), 100);
        let openai_default = tiers.get("fast").unwrap().context_window();
        assert_eq!(tiers.largest_context_window(), openai_default.max(1000));

        let mut missing = config.clone();
        missing.default_tier = "huge".into();
        let error = ModelTiers::build(&missing).unwrap_err().to_string();
        assert!(error.contains("huge") && error.contains("fast"), "{error}");
    }

    #[test]
    fn missing_model_or_key_is_explained() {
        let no_model = ProviderConfig {
            kind: ProviderKind::Openai,
            ..ProviderConfig::default()
        };
        assert!(
            build_provider(&no_model)
                .unwrap_err()
                .to_string()
                .contains("needs `model`")
        );
        let unset_env = ProviderConfig {
            kind: ProviderKind::Openai,
            model: Some("m".into()),
            api_key_env: Some("FLYNN_MODELS_TEST_SURELY_UNSET_VAR".into()),
            ..ProviderConfig::default()
        };
        let error = build_provider(&unset_env).unwrap_err().to_string();
        assert!(
            error.contains("FLYNN_MODELS_TEST_SURELY_UNSET_VAR"),
            "{error}"
        );
        let bad_url = ProviderConfig {
            kind: ProviderKind::Openai,
            model: Some("m".into()),
            base_url: Some("localhost:11434".into()),
            ..ProviderConfig::default()
        };
        assert!(build_provider(&bad_url).is_err());
    }
}
