//! `[webhooks.<name>]`: one table per hook, checked at load ([`validate`]) and its secrets at
//! start and on `config.reload` ([`check_secrets`]).
//!
//! Secrets never sit in the file: `secret_env` names the environment variable(s) holding them
//! (taken out of the environment at start like the token; see `main::seal_environment`). A
//! list of variables is how a secret is rotated: a delivery signed with any of them passes.

use std::collections::BTreeMap;

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::template::Template;

/// Largest `max_body_bytes` a hook may configure (16 MiB).
pub const MAX_BODY_BYTES_CEILING: usize = 16 * 1024 * 1024;
/// Longest `wait_timeout_secs` (5 minutes).
pub const MAX_WAIT_TIMEOUT_SECS: u64 = 300;
/// Longest `tolerance_secs` (7 days).
pub const MAX_TOLERANCE_SECS: u64 = 7 * 86_400;
/// Bounds of a Standard Webhooks secret once base64-decoded (the specification: at least 24
/// bytes, 512 bits at most).
pub const STANDARD_SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Shortest GitHub secret accepted.
pub const MIN_GITHUB_SECRET_BYTES: usize = 16;

/// How deliveries to a hook are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`
    /// (space-separated list) over `{id}.{timestamp}.{body}`; secrets `whsec_<base64>`.
    #[default]
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body, delivery id in
    /// `X-GitHub-Delivery`; the secret is used as it is written.
    Github,
}

/// One variable name or a list of them (rotation: every listed secret is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretEnv {
    One(String),
    Many(Vec<String>),
}

impl SecretEnv {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::One(name) => vec![name.as_str()],
            Self::Many(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

/// `[webhooks.<name>]`: a hook served at `POST /webhooks/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `false`: the hook answers 404 like an unknown name.
    pub enabled: bool,
    /// `standard-webhooks` (default) or `github`.
    pub scheme: Scheme,
    /// Environment variable holding the signing secret, or a list of them for rotation. Unset:
    /// the hook is unsigned and needs the gateway token (chat scope) whenever one is configured.
    pub secret_env: Option<SecretEnv>,
    /// Standard Webhooks: how far `webhook-timestamp` may be from now, either way (default
    /// 300). Delivery ids are remembered twice as long (a timestamp up to this far in the future
    /// stays fresh that long). GitHub: how long delivery ids are remembered (default 86400).
    pub tolerance_secs: Option<u64>,
    /// The session turns run on (default `webhook:<name>`).
    pub session: Option<String>,
    /// RFC 6901 JSON pointer into the payload (e.g. `/repository/name`): its value (a string or
    /// an integer) is appended to the session, `<session>:<value>`. A payload without it is 400.
    pub session_pointer: Option<String>,
    /// The message the agent gets. Placeholders: `{{payload}}` (the payload as pretty JSON),
    /// `{{hook}}` (the hook's name), `{{/json/pointer}}` (a value of the payload: strings as
    /// they are, anything else as JSON, missing ones empty). Each is cut at 16 KiB. Default: a
    /// line naming the hook, then the payload.
    pub template: Option<String>,
    /// Largest accepted body (default 1 MiB, at most 16 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// With `?wait=true`, how long the answer waits for the turn (default 30, at most 300); a
    /// turn still running then is answered 202 and goes on.
    pub wait_timeout_secs: u64,
    /// Whether the hook's turns may call tools (default false).
    pub tools: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            scheme: Scheme::StandardWebhooks,
            secret_env: None,
            tolerance_secs: None,
            session: None,
            session_pointer: None,
            template: None,
            max_body_bytes: 1024 * 1024,
            wait_timeout_secs: 30,
            tools: false,
        }
    }
}

impl WebhookConfig {
    /// `tolerance_secs` or the scheme's default.
    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance_secs.unwrap_or(match self.scheme {
            Scheme::StandardWebhooks => 300,
            Scheme::Github => 86_400,
        })
    }

    /// How long a delivery id is remembered, in milliseconds (see `tolerance_secs`).
    pub fn replay_window_ms(&self) -> i64 {
        let secs = match self.scheme {
            Scheme::StandardWebhooks => self.tolerance_secs().saturating_mul(2),
            Scheme::Github => self.tolerance_secs(),
        };
        i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// The session of a hook's turns before `session_pointer` applies.
    pub fn base_session(&self, name: &str) -> String {
        self.session
            .clone()
            .unwrap_or_else(|| format!("webhook:{name}"))
    }

    /// The variables holding its secrets (none: an unsigned hook).
    pub fn secret_env_names(&self) -> Vec<&str> {
        self.secret_env
            .as_ref()
            .map(SecretEnv::names)
            .unwrap_or_default()
    }

    /// The HMAC keys of its secrets, read from the environment (the copy kept at start).
    /// `Err` names the variable and what is wrong with it, never its value.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, String> {
        self.secret_env_names()
            .into_iter()
            .map(|var| {
                let value = crate::env_secrets::env_secret(var)
                    .ok_or_else(|| format!("the environment variable {var} is not set"))?;
                key_from_secret(self.scheme, value.trim())
                    .map_err(|why| format!("the environment variable {var} {why}"))
            })
            .collect()
    }
}

/// The HMAC key a secret stands for: Standard Webhooks secrets are `whsec_` + base64 (the
/// prefix is optional), GitHub secrets are used as written.
pub fn key_from_secret(scheme: Scheme, secret: &str) -> Result<Vec<u8>, String> {
    match scheme {
        Scheme::StandardWebhooks => {
            let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
            let key = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| "is not a Standard Webhooks secret (`whsec_` followed by base64)")?;
            if !STANDARD_SECRET_BYTES.contains(&key.len()) {
                return Err(format!(
                    "holds a {}-byte secret; Standard Webhooks secrets are {} to {} bytes before base64",
                    key.len(),
                    STANDARD_SECRET_BYTES.start(),
                    STANDARD_SECRET_BYTES.end()
                ));
            }
            Ok(key)
        }
        Scheme::Github => {
            if secret.len() < MIN_GITHUB_SECRET_BYTES {
                return Err(format!(
                    "holds a secret shorter than {MIN_GITHUB_SECRET_BYTES} bytes; use a long random one"
                ));
            }
            Ok(secret.as_bytes().to_vec())
        }
    }
}

/// Whether `name` may name a hook: `[A-Za-z0-9_-]{1,64}`.
pub fn is_hook_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks every hook's table (what the types cannot say).
pub fn validate(hooks: &BTreeMap<String, WebhookConfig>) -> Result<(), String> {
    for (name, hook) in hooks {
        let at = format!("webhooks.{name}");
        if !is_hook_name(name) {
            return Err(format!(
                "{at}: a hook name is 1-64 letters, digits, `_` or `-` (it is the URL path /webhooks/<name>)"
            ));
        }
        if hook.max_body_bytes == 0 || hook.max_body_bytes > MAX_BODY_BYTES_CEILING {
            return Err(format!(
                "{at}.max_body_bytes must be 1 to {MAX_BODY_BYTES_CEILING} (16 MiB)"
            ));
        }
        if hook.wait_timeout_secs == 0 || hook.wait_timeout_secs > MAX_WAIT_TIMEOUT_SECS {
            return Err(format!(
                "{at}.wait_timeout_secs must be 1 to {MAX_WAIT_TIMEOUT_SECS}"
            ));
        }
        if hook
            .tolerance_secs
            .is_some_and(|t| t == 0 || t > MAX_TOLERANCE_SECS)
        {
            return Err(format!(
                "{at}.tolerance_secs must be 1 to {MAX_TOLERANCE_SECS} (7 days)"
            ));
        }
        if let Some(SecretEnv::Many(names)) = &hook.secret_env
            && names.is_empty()
        {
            return Err(format!(
                "{at}.secret_env is an empty list; name the variable(s) holding the secret, or remove the key for an unsigned hook"
            ));
        }
        if hook.secret_env_names().iter().any(|n| n.trim().is_empty()) {
            return Err(format!("{at}.secret_env: a variable name is empty"));
        }
        let session = hook.base_session(name);
        if let Err(e) = crate::session_id::validate_session_id(&session, "session") {
            return Err(format!("{at}.session: {}", e.message));
        }
        if let Some(pointer) = &hook.session_pointer
            && !super::template::is_json_pointer(pointer)
        {
            return Err(format!(
                "{at}.session_pointer `{pointer}` is not an RFC 6901 JSON pointer (e.g. `/repository/name`)"
            ));
        }
        if let Some(template) = &hook.template {
            Template::parse(template).map_err(|why| format!("{at}.template: {why}"))?;
        }
    }
    Ok(())
}

/// Checks that every enabled signed hook's secret variables are set and well-formed (at start
/// and on reload: a hook that could never verify a delivery is a configuration error).
pub fn check_secrets(hooks: &BTreeMap<String, WebhookConfig>) -> Result<(), String> {
    for (name, hook) in hooks.iter().filter(|(_, h)| h.enabled) {
        hook.keys().map_err(|why| {
            format!("webhooks.{name}.secret_env: {why}; set it, or disable the hook")
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(toml_text: &str) -> BTreeMap<String, WebhookConfig> {
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_pointers_templates_and_bounds_are_checked() {
        assert!(validate(&hooks("[ok-1]\n")).is_ok());
        assert!(validate(&hooks("[\"bad name\"]\n")).is_err());
        assert!(validate(&hooks(&format!("[{}]\n", "a".repeat(65)))).is_err());
        assert!(validate(&hooks("[a]\nsession_pointer = \"no/slash\"\n")).is_err());
        assert!(validate(&hooks("[a]\nsession_pointer = \"/a~2b\"\n")).is_err());
        assert!(validate(&hooks("[a]\nsession_pointer = \"/a~1b/c\"\n")).is_ok());
        assert!(validate(&hooks("[a]\ntemplate = \"{{nope}}\"\n")).is_err());
        assert!(validate(&hooks("[a]\ntemplate = \"{{payload\"\n")).is_err());
        assert!(validate(&hooks("[a]\nmax_body_bytes = 0\n")).is_err());
        assert!(validate(&hooks("[a]\nmax_body_bytes = 16777217\n")).is_err());
        assert!(validate(&hooks("[a]\nwait_timeout_secs = 301\n")).is_err());
        assert!(validate(&hooks("[a]\ntolerance_secs = 0\n")).is_err());
        assert!(validate(&hooks("[a]\nsecret_env = []\n")).is_err());
        assert!(validate(&hooks("[a]\nsecret_env = [\"A\", \"B\"]\n")).is_ok());
        assert!(validate(&hooks("[a]\nsession = \"bad\\u0007\"\n")).is_err());
    }

    #[test]
    fn secrets_are_decoded_by_scheme_and_never_echoed() {
        let key = key_from_secret(
            Scheme::StandardWebhooks,
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        );
        assert_eq!(key.map(|k| k.len()), Ok(24));
        let short = key_from_secret(Scheme::StandardWebhooks, "whsec_c2hvcnQ=");
        assert!(short.is_err_and(|e| !e.contains("c2hvcnQ")));
        let not_base64 = key_from_secret(Scheme::StandardWebhooks, "whsec_not base64!");
        assert!(not_base64.is_err_and(|e| !e.contains("not base64!")));
        assert!(key_from_secret(Scheme::Github, "short").is_err());
        assert_eq!(
            key_from_secret(Scheme::Github, "It's a Secret to Everybody"),
            Ok(b"It's a Secret to Everybody".to_vec())
        );
    }

    /// The commented-out hook of flynn.example.toml (and so of the README) is a valid hook
    /// naming every key.
    #[test]
    fn the_documented_example_hook_is_valid_and_complete() {
        let example = include_str!("../../flynn.example.toml");
        let start = example
            .find("# [webhooks.billing]")
            .unwrap_or_else(|| panic!("no example hook"));
        let text: String = example[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let config: crate::Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        validate(&config.webhooks).unwrap_or_else(|e| panic!("{e}"));
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let keys = table["webhooks"]["billing"].as_table().map(|t| t.len());
        let all = toml::Table::try_from(WebhookConfig {
            secret_env: Some(SecretEnv::One(String::new())),
            tolerance_secs: Some(1),
            session: Some(String::new()),
            session_pointer: Some(String::new()),
            template: Some(String::new()),
            ..WebhookConfig::default()
        })
        .map(|t| t.len());
        assert_eq!(keys, all.ok(), "the example hook names every key");
    }

    /// Hook secrets are taken out of the daemon's environment at start, like the token.
    #[test]
    fn hook_secret_variables_are_sealed_like_the_token() {
        let config: crate::Config = toml::from_str(
            "[webhooks.a]\nsecret_env = \"HOOK_A\"\n[webhooks.b]\nsecret_env = [\"HOOK_B1\", \"HOOK_B2\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let names = config.secret_env_names(["HOOK_A", "HOOK_B2", "PATH"]);
        assert!(
            names.contains("HOOK_A") && names.contains("HOOK_B2"),
            "{names:?}"
        );
        assert!(!names.contains("PATH"));
    }

    #[test]
    fn the_replay_window_covers_future_timestamps() {
        let standard = WebhookConfig::default();
        assert_eq!(standard.replay_window_ms(), 600_000);
        let github = WebhookConfig {
            scheme: Scheme::Github,
            ..WebhookConfig::default()
        };
        assert_eq!(github.replay_window_ms(), 86_400_000);
    }
}
