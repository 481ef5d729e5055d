//! What the types cannot check: value ranges, named tokens, TLS files in pairs, queue caps,
//! the sections of other crates; and the refusal to expose an unauthenticated gateway.

use std::net::IpAddr;

use super::file::{Config, ConfigError, TOKEN_ENV};
use super::server::{NamedToken, ServerConfig};

impl Config {
    /// Checks what the types cannot. The first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.channels.validate().map_err(ConfigError::Invalid)?;
        server_limits(&self.server)?;
        named_tokens(&self.server.tokens)?;
        server_front(&self.server)?;
        self.queue_and_agent()?;
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

    /// `[queue]` caps and `[agent]` percentages.
    fn queue_and_agent(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}

/// `server.token` and the numeric limits of `[server]`.
fn server_limits(s: &ServerConfig) -> Result<(), ConfigError> {
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
        ("write_stall_timeout_ms", s.write_stall_timeout_ms),
        ("close_delivery_timeout_ms", s.close_delivery_timeout_ms),
    ] {
        if ms < 100 {
            return Err(ConfigError::Invalid(format!(
                "server.{key} must be at least 100 (milliseconds)"
            )));
        }
    }
    Ok(())
}

/// `server.tokens`: named, unique, one source each, long enough, with known scopes and valid
/// session globs.
fn named_tokens(tokens: &[NamedToken]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, t) in tokens.iter().enumerate() {
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
    Ok(())
}

/// What the HTTP front needs: TLS files in pairs, the connection and inbound caps, the
/// allowed hosts.
fn server_front(s: &ServerConfig) -> Result<(), ConfigError> {
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
    Ok(())
}
