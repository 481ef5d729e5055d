//! `[server]`: listening, auth (the token, named tokens with scopes and session filters),
//! connection limits, TLS and the node gates.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env_secrets::env_secret;

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
    /// How long one write to a WebSocket client may make no progress (the client stopped
    /// reading and the buffers are full) before the connection is dropped.
    pub write_stall_timeout_ms: u64,
    /// How long a close frame the gateway sends (1008, 1001, ...) may take to reach a peer that
    /// reads slowly: it waits behind what is already buffered for that peer. Then the TCP
    /// connection is dropped and the peer sees no close code. Longer keeps a stuck
    /// connection's resources longer; shorter loses the code for slow readers.
    pub close_delivery_timeout_ms: u64,
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
            write_stall_timeout_ms: 10_000,
            close_delivery_timeout_ms: 3_000,
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
