//! The daemon's configuration: a TOML file whose keys follow the protocol document
//! (`server.token`, `server.tailscale_identity`, `server.auth_http`, `server.nodes.*`), plus
//! ours. Every section has defaults, so no file at all is a valid configuration. The JSON Schema
//! of the file (`flynn-gateway config-schema`) is generated from these types with schemars.
//!
//! - `file`: the root table, loading, environment overrides for secrets.
//! - `server`: `[server]`.
//! - `sections`: the other sections the gateway defines (storage, pairing, logging, ...).
//! - `validate`: what the types cannot check, and the exposure check at start.
//! - `redact`: the configuration with its secrets hidden, for `config.get`.

mod file;
mod redact;
mod sections;
mod server;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::env_secrets::keep_env_secrets;
pub use file::{Config, ConfigError, TOKEN_ENV};
/// The `[queue]` and `[agent]` sections belong to the agent (`flynn_agent::config`).
pub use flynn_agent::config::{
    AgentConfig, Overflow, QueueConfig, QueueMode, QueuePolicy, QueuePolicyOverride,
};
pub use redact::is_secret_key;
pub use sections::{
    CanvasConfig, LogFormat, LoggingConfig, PairingConfig, PresenceConfig, StorageConfig,
};
pub use server::{NamedToken, NodesConfig, ServerConfig, SessionFilter, Switch, TlsConfig};
