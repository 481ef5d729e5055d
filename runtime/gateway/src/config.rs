//! The daemon's configuration: a TOML file whose keys follow the protocol document
//! (`server.token`, `server.tailscale_identity`, `server.auth_http`, `server.nodes.*`), plus
//! ours. Every section has defaults, so no file at all is a valid configuration. The JSON Schema
//! of the file (`flynn-gateway config-schema`) is generated from these types with schemars.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use crate::env_secrets::env_secret;
pub use crate::env_secrets::keep_env_secrets;
use crate::env_secrets::kept_env;

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

/// `[server]`: listening, auth and connection limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind. Binding anything but loopback requires `token`.
    pub bind: IpAddr,
    pub port: u16,
    /// Bearer token required on every WebSocket (and HTTP request when `auth_http`). Prefer the
    /// FLYNN_SERVER_TOKEN environment variable.
    pub token: Option<String>,
    /// Named tokens, each with the scopes it holds (`server.token` holds every scope).
    pub tokens: Vec<NamedToken>,
    /// Trust the `Tailscale-User-Login` header, only from a loopback peer (Tailscale Serve).
    pub tailscale_identity: bool,
    /// Require the token on HTTP routes too (webhooks excepted).
    pub auth_http: bool,
    /// Extra browser origins allowed to open a WebSocket (origins whose host is an allowed host
    /// always are).
    pub allowed_origins: Vec<String>,
    /// Extra `Host` header values served, besides loopback names and addresses with the bound
    /// port and the bind address: `name` (any port) or `name:port`; `*.example.net` matches
    /// subdomains. Needed behind a reverse proxy that keeps the public name (Tailscale Serve).
    pub allowed_hosts: Vec<String>,
    /// Serve the dashboard at `/` (the build embedded in the binary, or `dashboard_dir`); false:
    /// `/` answers the JSON 404 like any unknown route.
    pub dashboard: bool,
    /// Folder served as the dashboard's static files (`GET /` and below) instead of the
    /// embedded build.
    pub dashboard_dir: Option<PathBuf>,
    /// Largest accepted frame, in bytes.
    pub max_frame_bytes: usize,
    /// Most simultaneous WebSocket connections.
    pub max_connections: usize,
    /// Frames queued for one connection before it is closed as a slow consumer (1008).
    pub outbound_buffer_frames: usize,
    /// WebSocket ping interval; a connection missing two pongs is closed.
    pub ping_interval_ms: u64,
    /// Wrong credentials per address per minute before further wrong attempts get 429 (a
    /// correct credential always passes; missing credentials are not counted).
    pub auth_failures_per_minute: u32,
    /// A request's head must be complete within this, counted from the moment the connection
    /// starts waiting for it (slowloris).
    pub header_read_timeout_ms: u64,
    /// From accept until the connection is an authenticated WebSocket or has had its first
    /// request answered.
    pub handshake_timeout_ms: u64,
    /// A keep-alive HTTP connection with no request in progress is closed after this.
    pub idle_timeout_ms: u64,
    /// Connections not yet authenticated (counted from accept, HTTP keep-alive included); when
    /// full, the oldest is closed to make room, so a new client always gets through.
    pub max_unauthenticated_connections: usize,
    /// Bytes of incomplete incoming frames held across all connections. Each connection may
    /// hold `inbound_free_bytes_per_connection` without drawing on it; beyond that, reads wait
    /// for budget, and a connection that waits `inbound_wait_timeout_ms` is closed with 1013.
    pub max_inbound_bytes: usize,
    /// How long a read may wait for inbound budget before its connection is closed (1013).
    pub inbound_wait_timeout_ms: u64,
    /// See `max_inbound_bytes`.
    pub inbound_free_bytes_per_connection: usize,
    pub nodes: NodesConfig,
    /// `[server.tls]`: `wss://` and `https://` on the same port.
    pub tls: TlsConfig,
}

/// `[server.tls]`: a PEM certificate chain and its private key; both or neither. Re-read at
/// start and on every `config.reload` (renewed certificates apply to new connections).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 18800,
            token: None,
            tailscale_identity: false,
            auth_http: true,
            tokens: Vec::new(),
            allowed_origins: Vec::new(),
            dashboard: true,
            dashboard_dir: None,
            max_frame_bytes: 25 * 1024 * 1024,
            max_connections: 10_240,
            outbound_buffer_frames: 1024,
            ping_interval_ms: 30_000,
            auth_failures_per_minute: 10,
            allowed_hosts: Vec::new(),
            header_read_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_unauthenticated_connections: 256,
            max_inbound_bytes: 64 * 1024 * 1024,
            inbound_wait_timeout_ms: 10_000,
            inbound_free_bytes_per_connection: 16 * 1024,
            nodes: NodesConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

/// `[[server.tokens]]`: a named credential and the scopes it holds (decision scopes: `read`,
/// `chat`, `operator`, `admin`). Logs and `system.presence` name it; nothing shows its value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NamedToken {
    /// Shown in logs and presence instead of the token.
    pub name: String,
    /// The environment variable holding the token (preferred; read at start and on reload).
    pub token_env: Option<String>,
    /// The token itself, when not from the environment (shown as *** by config.get).
    pub token: Option<String>,
    /// Scopes this token holds.
    pub scopes: Vec<String>,
    /// Sessions it may use, as globs (`phone:*`); empty: every session. A connection may
    /// always use its own `ws:<connectionId>` session.
    pub sessions: Vec<String>,
}

impl NamedToken {
    /// The token value: from `token_env` (the copy kept at start), else `token`.
    pub fn value(&self) -> Option<String> {
        self.token_env
            .as_deref()
            .and_then(env_secret)
            .or_else(|| self.token.clone())
            .filter(|t| !t.is_empty())
    }

    /// The sessions it may use (`None`: every one); `Err` names a bad pattern.
    pub fn session_filter(&self) -> Result<Option<SessionFilter>, String> {
        if self.sessions.is_empty() {
            return Ok(None);
        }
        SessionFilter::new(&self.sessions).map(Some)
    }

    /// The scopes as a set; `Err` names an unknown one.
    pub fn scope_set(&self) -> Result<flynn_protocol::Scopes, String> {
        let mut set = flynn_protocol::Scopes::NONE;
        for name in &self.scopes {
            let scope = flynn_protocol::Scopes::from_name(name).ok_or_else(|| name.clone())?;
            set = set.with(scope);
        }
        Ok(set)
    }
}

/// The sessions a named token may use: globs over session ids.
#[derive(Debug, Clone)]
pub struct SessionFilter {
    patterns: Vec<String>,
    matcher: globset::GlobSet,
}

impl SessionFilter {
    /// Compiles `patterns`; `Err` names the first bad one.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut set = globset::GlobSetBuilder::new();
        for p in patterns {
            let glob = globset::GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .map_err(|e| format!("`{p}`: {e}"))?;
            set.add(glob);
        }
        let matcher = set.build().map_err(|e| e.to_string())?;
        Ok(Self {
            patterns: patterns.to_vec(),
            matcher,
        })
    }

    pub fn allows(&self, session_id: &str) -> bool {
        self.matcher.is_match(session_id)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for SessionFilter {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for SessionFilter {}

/// `[server.nodes]`: companion node policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NodesConfig {
    pub enabled: bool,
    pub allowed_roles: Vec<String>,
    /// Protocol versions this gateway speaks to nodes.
    pub protocol_versions: Vec<i64>,
    pub location: Switch,
    pub push: Switch,
    /// Feature gates: which node capabilities are enabled.
    pub feature_gates: BTreeMap<String, bool>,
}

impl Default for NodesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_roles: vec!["companion".to_owned()],
            protocol_versions: vec![flynn_protocol::PROTOCOL_VERSION],
            location: Switch { enabled: true },
            push: Switch { enabled: false },
            feature_gates: [
                ("ui.canvas", true),
                ("notifications", true),
                ("location", true),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }
    }
}

/// A `{ enabled = bool }` switch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Switch {
    pub enabled: bool,
}

/// `[storage]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (default: $XDG_DATA_HOME/flynn, else ~/.local/share/flynn).
    pub data_dir: Option<PathBuf>,
}

/// Queue modes of a session lane and what happens when a lane's queue is full: the protocol's
/// enums (the config file spells them as the wire does).
pub use flynn_protocol::types::{QueueMode, QueueOverflow as Overflow};

/// Queue policy of a lane (`[queue]`, `[queue.channels.<frontend>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueuePolicy {
    pub mode: QueueMode,
    pub cap: u32,
    pub overflow: Overflow,
    pub debounce_ms: u64,
    pub summarize_overflow: bool,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            mode: QueueMode::Followup,
            cap: 8,
            overflow: Overflow::DropOld,
            debounce_ms: 250,
            summarize_overflow: true,
        }
    }
}

/// `[queue]`: the default policy and per-channel overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(flatten)]
    pub default: QueuePolicy,
    /// Overrides by channel (the session id's frontend, e.g. `telegram`); keys a channel does
    /// not name keep the `[queue]` value.
    pub channels: BTreeMap<String, QueuePolicyOverride>,
}

/// Part of a queue policy: what a channel changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueuePolicyOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<QueueMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summarize_overflow: Option<bool>,
}

impl QueuePolicyOverride {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `base` with this override's keys applied.
    pub fn over(&self, base: &QueuePolicy) -> QueuePolicy {
        QueuePolicy {
            mode: self.mode.unwrap_or(base.mode),
            cap: self.cap.unwrap_or(base.cap),
            overflow: self.overflow.unwrap_or(base.overflow),
            debounce_ms: self.debounce_ms.unwrap_or(base.debounce_ms),
            summarize_overflow: self.summarize_overflow.unwrap_or(base.summarize_overflow),
        }
    }
}

/// `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub system_prompt: String,
    /// Most model calls in one run (tool loops stop there).
    pub max_iterations: u32,
    /// How long a tool approval request waits for the client.
    pub approval_timeout_ms: u64,
    /// `context_warning` level `warning` from this usage percentage.
    pub warning_pct: f64,
    /// Checkpoint (and optional compaction) from this usage percentage.
    pub threshold_pct: f64,
    pub auto_compact: bool,
    /// How long an `agent.send` `idempotencyKey` and its reply are kept (in the store, so
    /// across restarts), in seconds.
    pub idempotency_ttl_secs: u64,
    /// Most events kept per turn for `agent.attach` (the oldest are dropped first).
    pub run_events_max: usize,
    /// Most bytes of event data kept per turn for `agent.attach` (the oldest are dropped first).
    pub run_events_max_bytes: usize,
    /// How long a finished turn's events and outcome stay attachable, in seconds.
    pub run_grace_secs: u64,
    /// Most turns kept for `agent.attach` across the gateway, running ones included: beyond
    /// it, the finished turns that ended first are forgotten (running turns never are).
    pub runs_kept_max: usize,
    /// Most bytes of kept event data across all kept turns: beyond it, the finished turns that
    /// ended first are forgotten (running turns never are).
    pub runs_kept_max_bytes: usize,
}

impl AgentConfig {
    /// The gateway-wide bound of kept turns.
    pub fn kept_cap(&self) -> crate::kept_cap::KeptCap {
        crate::kept_cap::KeptCap {
            max_turns: self.runs_kept_max,
            max_bytes: self.runs_kept_max_bytes,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are Flynn, a helpful personal assistant.".to_owned(),
            max_iterations: 8,
            approval_timeout_ms: 60_000,
            warning_pct: 70.0,
            threshold_pct: 80.0,
            auto_compact: false,
            idempotency_ttl_secs: 86_400,
            run_events_max: 10_000,
            run_events_max_bytes: 4 * 1024 * 1024,
            run_grace_secs: 300,
            runs_kept_max: 1_000,
            runs_kept_max_bytes: 64 * 1024 * 1024,
        }
    }
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

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.channels.validate().map_err(ConfigError::Invalid)?;
        let s = &self.server;
        if s.token.as_deref().is_some_and(|t| t.len() < 8) {
            return Err(ConfigError::Invalid(
                "server.token is shorter than 8 characters; use a long random token".into(),
            ));
        }
        if s.max_frame_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "server.max_frame_bytes must be at least 1024".into(),
            ));
        }
        if s.outbound_buffer_frames == 0 || s.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.outbound_buffer_frames and server.max_connections must be positive".into(),
            ));
        }
        if s.ping_interval_ms < 100 {
            return Err(ConfigError::Invalid(
                "server.ping_interval_ms must be at least 100".into(),
            ));
        }
        for (key, ms) in [
            ("header_read_timeout_ms", s.header_read_timeout_ms),
            ("handshake_timeout_ms", s.handshake_timeout_ms),
            ("idle_timeout_ms", s.idle_timeout_ms),
            ("inbound_wait_timeout_ms", s.inbound_wait_timeout_ms),
        ] {
            if ms < 100 {
                return Err(ConfigError::Invalid(format!(
                    "server.{key} must be at least 100 (milliseconds)"
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in s.tokens.iter().enumerate() {
            let at = format!("server.tokens[{i}]");
            if t.name.trim().is_empty() {
                return Err(ConfigError::Invalid(format!("{at}: give the token a name")));
            }
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "{at}: the name `{}` is used twice; token names must be unique",
                    t.name
                )));
            }
            if t.token_env.is_none() == t.token.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "{at} (`{}`): set exactly one of token_env (preferred) or token",
                    t.name
                )));
            }
            if t.token.as_deref().is_some_and(|v| v.len() < 8) {
                return Err(ConfigError::Invalid(format!(
                    "{at} (`{}`): the token is shorter than 8 characters; use a long random token",
                    t.name
                )));
            }
            if t.scopes.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{at} (`{}`): list its scopes (read, chat, operator, admin)",
                    t.name
                )));
            }
            if let Err(bad) = t.session_filter() {
                return Err(ConfigError::Invalid(format!(
                    "{at} (`{}`): sessions: {bad}; use globs such as \"phone:*\"",
                    t.name
                )));
            }
            if let Err(unknown) = t.scope_set() {
                return Err(ConfigError::Invalid(format!(
                    "{at} (`{}`): unknown scope `{unknown}`; the scopes are read, chat, operator and admin",
                    t.name
                )));
            }
        }
        if s.tls.cert_file.is_some() != s.tls.key_file.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls needs both cert_file and key_file (PEM), or neither for plain ws:// and http://"
                    .into(),
            ));
        }
        if s.max_unauthenticated_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_unauthenticated_connections must be positive".into(),
            ));
        }
        if s.max_inbound_bytes < s.max_frame_bytes {
            return Err(ConfigError::Invalid(
                "server.max_inbound_bytes must hold at least one largest frame (server.max_frame_bytes); raise it or lower server.max_frame_bytes"
                    .into(),
            ));
        }
        if let Some(bad) = s
            .allowed_hosts
            .iter()
            .find(|h| crate::hosts::HostPattern::parse(h).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "server.allowed_hosts: `{bad}` is not a host name, `name:port`, `*.domain` or an IP address"
            )));
        }
        let channel_caps = self
            .queue
            .channels
            .iter()
            .filter_map(|(k, v)| v.cap.map(|c| (k.as_str(), c)));
        for (name, cap) in std::iter::once(("queue", self.queue.default.cap)).chain(channel_caps) {
            if cap == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{name}: cap must be at least 1"
                )));
            }
        }
        let a = &self.agent;
        if !(0.0..=100.0).contains(&a.warning_pct) || !(0.0..=100.0).contains(&a.threshold_pct) {
            return Err(ConfigError::Invalid(
                "agent.warning_pct and agent.threshold_pct are percentages (0-100)".into(),
            ));
        }
        self.tools.validate().map_err(ConfigError::Invalid)?;
        crate::webhooks::config::validate(&self.webhooks).map_err(ConfigError::Invalid)?;
        self.push.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Refuses to expose an unauthenticated gateway beyond this machine.
    pub fn check_exposure(&self, bind: IpAddr) -> Result<(), ConfigError> {
        for t in &self.server.tokens {
            if t.value().is_none_or(|v| v.len() < 8) {
                return Err(ConfigError::Invalid(format!(
                    "server.tokens `{}`: the environment variable {} is not set or shorter than 8 characters; set it, or remove the token",
                    t.name,
                    t.token_env.as_deref().unwrap_or("(token_env)")
                )));
            }
        }
        crate::webhooks::config::check_secrets(&self.webhooks).map_err(ConfigError::Invalid)?;
        if !bind.to_canonical().is_loopback() && !self.has_credentials() {
            return Err(ConfigError::Invalid(format!(
                "refusing to bind {bind} without a token: anyone on the network could drive the agent. \
                 Set server.token (or {TOKEN_ENV}), or bind 127.0.0.1"
            )));
        }
        Ok(())
    }

    /// Whether any credential is configured (`server.token` or a named token): then every
    /// request must present one.
    pub fn has_credentials(&self) -> bool {
        self.server.token.is_some() || !self.server.tokens.is_empty()
    }

    /// The queue policy of a channel (frontend), before per-session overrides.
    pub fn queue_policy_for(&self, frontend: &str) -> QueuePolicy {
        match self.queue.channels.get(frontend) {
            Some(channel) => channel.over(&self.queue.default),
            None => self.queue.default.clone(),
        }
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

    /// The configuration as JSON with every secret replaced by `***` (for `config.get`).
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        redact(&mut value);
        value
    }

    /// The JSON Schema of the config file.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or(serde_json::Value::Null)
    }
}

/// Whether a config key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['_', '-'], "");
    [
        "token",
        "secret",
        "password",
        "apikey",
        "privatekey",
        "accesskey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                // Lists and tables under a secret-sounding key (`server.tokens`) are walked: their
                // members say which parts are secret.
                if is_secret_key(key) && (v.is_string() || v.is_number()) {
                    *v = serde_json::Value::String("***".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c: Config = toml::from_str("").unwrap_or_default();
        assert_eq!(c.server.port, 18800);
        assert!(c.server.bind.is_loopback());
        assert_eq!(c.queue.default, QueuePolicy::default());
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::default();
        c.server.token = Some("supersecret-token".into());
        let v = c.redacted();
        assert_eq!(v["server"]["token"], "***");
        assert!(!v.to_string().contains("supersecret"));
        // A boolean switch named like a secret is not a secret.
        assert_eq!(v["server"]["tailscale_identity"], false);
    }

    #[test]
    fn non_loopback_without_token_is_refused() {
        let c = Config::default();
        assert!(
            c.check_exposure("0.0.0.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
                .is_err()
        );
        assert!(c.check_exposure(IpAddr::from([127, 0, 0, 1])).is_ok());
    }

    #[test]
    fn json_schema_describes_the_file() {
        let schema = Config::json_schema();
        let text = schema.to_string();
        for key in [
            "server",
            "token",
            "tailscale_identity",
            "auth_http",
            "allowed_roles",
            "queue",
            "models",
            "tools",
            "ops",
        ] {
            assert!(
                text.contains(&format!("\"{key}\"")),
                "the config schema lacks `{key}`"
            );
        }
        // The documented example file validates against it; a misspelt key does not.
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
        let example: toml::Value =
            toml::from_str(include_str!("../flynn.example.toml")).unwrap_or_else(|e| panic!("{e}"));
        let instance = serde_json::to_value(example).unwrap_or_default();
        if let Some(error) = validator.iter_errors(&instance).next() {
            panic!(
                "the example does not validate: {error} at {}",
                error.instance_path()
            );
        }
        let wrong = serde_json::json!({ "server": { "prot": 1 } });
        assert!(
            !validator.is_valid(&wrong),
            "a misspelt key must not validate"
        );
    }

    #[test]
    fn secret_env_names_are_the_token_the_tier_keys_and_hide_env() {
        let c: Config = toml::from_str(
            "[models.tiers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"MY_KEY\"\n\
             [tools.shell]\nhide_env = [\"SECRET_*\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let present = [
            "FLYNN_SERVER_TOKEN",
            "MY_KEY",
            "ANTHROPIC_API_KEY",
            "SECRET_THING",
            "OPENAI_API_KEY",
            "PATH",
            "HOME",
        ];
        let names: Vec<String> = c.secret_env_names(present).into_iter().collect();
        assert_eq!(
            names,
            [
                "ANTHROPIC_API_KEY",
                "FLYNN_SERVER_TOKEN",
                "MY_KEY",
                "SECRET_THING"
            ]
        );
        // The default hide_env covers FLYNN_* and both providers' usual variables.
        let names = Config::default().secret_env_names(present);
        assert!(
            names.contains("OPENAI_API_KEY") && !names.contains("PATH"),
            "{names:?}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("[server]\nprot = 1").is_err());
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// Paths (as segments) of every leaf key of a TOML table.
    fn leaf_keys(prefix: &[String], value: &toml::Value, out: &mut Vec<Vec<String>>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let mut path = prefix.to_vec();
                    path.push(k.clone());
                    leaf_keys(&path, v, out);
                }
            }
            _ => out.push(prefix.to_vec()),
        }
    }

    /// The example file parses, and documents every key the daemon has (so the README's
    /// configuration section cannot fall behind the code).
    #[test]
    fn example_file_parses_and_covers_every_key() {
        let text = include_str!("../flynn.example.toml");
        let example: Config =
            toml::from_str(text).unwrap_or_else(|e| panic!("example does not parse: {e}"));
        example
            .validate()
            .unwrap_or_else(|e| panic!("example is invalid: {e}"));
        // Every key of the default configuration appears in the example (commented or not).
        let defaults = toml::Value::try_from(Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut keys = Vec::new();
        leaf_keys(&[], &defaults, &mut keys);
        for key in keys {
            let leaf = key.last().map(String::as_str).unwrap_or_default();
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{leaf} =")) || l.starts_with(&format!("\"{leaf}\" ="))
            });
            assert!(
                documented,
                "flynn.example.toml does not document `{}`",
                key.join(".")
            );
        }
        // The README shows the same file, verbatim.
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&format!("```toml\n{text}```")),
            "README.md's configuration section differs from runtime/gateway/flynn.example.toml; paste the file in"
        );
    }
}
