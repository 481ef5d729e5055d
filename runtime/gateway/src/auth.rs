//! Who may talk to the gateway: bearer tokens (header, or the `Sec-WebSocket-Protocol` entry
//! browsers use), Tailscale identity from a loopback peer only, the browser `Origin` check, and a
//! per-address limit on failed attempts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use flynn_protocol::Scopes;

use crate::config::{ServerConfig, SessionFilter};

/// The subprotocol the gateway selects when a client offers it, and the prefix of the entry
/// carrying `base64url(token)` (no padding): generated from `x-http.auth.browserSubprotocol`.
pub use flynn_protocol::{BEARER_SUBPROTOCOL_PREFIX as BEARER_PREFIX, SUBPROTOCOL};
/// The header Tailscale Serve sets.
pub const TAILSCALE_LOGIN_HEADER: &str = "tailscale-user-login";

/// Who a request is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No token is configured (loopback only): every scope.
    Open,
    /// A token: `server.token` (named `server.token`, every scope and session) or a named
    /// token, perhaps limited to some sessions.
    Token {
        name: String,
        scopes: Scopes,
        sessions: Option<SessionFilter>,
    },
    /// A Tailscale login from a loopback peer: every scope.
    Tailscale(String),
}

/// The name `server.token` goes by in logs and presence.
pub const SERVER_TOKEN_NAME: &str = "server.token";

impl Identity {
    /// The scopes this identity holds.
    pub fn scopes(&self) -> Scopes {
        match self {
            Self::Open | Self::Tailscale(_) => Scopes::ALL,
            Self::Token { scopes, .. } => *scopes,
        }
    }

    /// Whether this identity may use `session_id` (its own `ws:` session is checked by the
    /// caller).
    pub fn session_allowed(&self, session_id: &str) -> bool {
        match self {
            Self::Token {
                sessions: Some(filter),
                ..
            } => filter.allows(session_id),
            _ => true,
        }
    }

    /// Whether this identity is limited to some sessions.
    pub fn is_session_limited(&self) -> bool {
        matches!(
            self,
            Self::Token {
                sessions: Some(_),
                ..
            }
        )
    }

    /// How logs and presence name the identity (never the token itself).
    pub fn principal(&self) -> Option<&str> {
        match self {
            Self::Open => None,
            Self::Token { name, .. } => Some(name),
            Self::Tailscale(login) => Some(login),
        }
    }
}

/// Why a request is refused. Codes: -4 for missing credentials, -5 for wrong ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: send `Authorization: Bearer <token>` (browsers: the `flynn.bearer.<base64url token>` subprotocol)"
    )]
    Missing,
    #[error("authentication failed: the token is not valid")]
    Wrong,
    #[error("too many failed authentication attempts from this address; retry in {0} s")]
    RateLimited(u64),
    #[error(
        "origin `{0}` is not allowed to open a WebSocket; add it to server.allowed_origins (or its host to server.allowed_hosts)"
    )]
    Origin(String),
}

impl AuthError {
    /// The protocol error code.
    pub fn code(&self) -> flynn_protocol::ErrorCode {
        match self {
            Self::Missing => flynn_protocol::ErrorCode::AuthRequired,
            _ => flynn_protocol::ErrorCode::AuthFailed,
        }
    }
}

/// The token a request presents, from the header or a subprotocol entry.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // RFC 7235: the scheme is case-insensitive and followed by one or more spaces.
        let value = value.trim();
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => "",
        };
        return Some(token.to_owned());
    }
    offered_subprotocols(headers)
        .into_iter()
        .find_map(|p| p.strip_prefix(BEARER_PREFIX).map(str::to_owned))
        .map(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                // An undecodable entry is a wrong token, not a missing one.
                .unwrap_or_else(|| "\u{0}invalid".to_owned())
        })
}

/// The spec's rule for the browser form: a `flynn.bearer.*` offer must come with `flynn.v1`
/// (the protocol the server selects). `Err` says what is wrong.
pub fn check_subprotocol_offer(headers: &HeaderMap) -> Result<(), String> {
    let offered = offered_subprotocols(headers);
    let has_bearer = offered.iter().any(|p| p.starts_with(BEARER_PREFIX));
    if has_bearer && !offered.iter().any(|p| p == SUBPROTOCOL) {
        return Err(format!(
            "a `{BEARER_PREFIX}*` subprotocol entry must be offered together with `{SUBPROTOCOL}`: \
             new WebSocket(url, [\"{SUBPROTOCOL}\", \"{BEARER_PREFIX}\" + base64url(token)])"
        ));
    }
    Ok(())
}

/// Subprotocols the client offered.
pub fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Compares in constant time (for equal lengths; lengths are not secret here).
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Failed attempts per address, in one-minute windows.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl FailureLimiter {
    /// Seconds until `ip` may try again, when it is over `limit`.
    pub fn blocked_for(&self, ip: IpAddr, limit: u32) -> Option<u64> {
        let windows = self.windows.lock().ok()?;
        let (start, count) = windows.get(&ip)?;
        let elapsed = start.elapsed();
        (elapsed < WINDOW && *count >= limit).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut windows) = self.windows.lock() {
            let now = Instant::now();
            if windows.len() > 10_000 {
                windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            }
            let entry = windows.entry(ip).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }
}

/// Whether `peer` is this machine (IPv4-mapped loopback such as `::ffff:127.0.0.1`, seen when
/// bound to `::`, included).
pub fn is_loopback_peer(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// Authenticates a request (WebSocket upgrade or HTTP) from `peer`. A correct credential always
/// passes; only wrong credentials are counted and, past the limit, answered with
/// `RateLimited` (behind a local proxy every client shares one address, so limiting successes
/// or tokenless calls would let one client lock out all).
pub fn authenticate(
    config: &ServerConfig,
    limiter: &FailureLimiter,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Identity, AuthError> {
    if config.tailscale_identity
        && is_loopback_peer(peer)
        && let Some(login) = headers
            .get(TAILSCALE_LOGIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    {
        return Ok(Identity::Tailscale(login.to_owned()));
    }
    if config.token.is_none() && config.tokens.is_empty() {
        return Ok(Identity::Open);
    }
    let ip = peer.ip().to_canonical();
    match presented_token(headers) {
        Some(token)
            if !token.is_empty()
                && let Some(identity) = match_token(config, &token) =>
        {
            Ok(identity)
        }
        // Nothing to guess with: not counted.
        None => Err(AuthError::Missing),
        Some(token) if token.is_empty() => Err(AuthError::Missing),
        Some(_) => {
            if let Some(wait) = limiter.blocked_for(ip, config.auth_failures_per_minute) {
                return Err(AuthError::RateLimited(wait));
            }
            limiter.record_failure(ip);
            Err(AuthError::Wrong)
        }
    }
}

/// The identity a presented token belongs to: `server.token` (every scope) or a named token.
fn match_token(config: &ServerConfig, presented: &str) -> Option<Identity> {
    if config
        .token
        .as_deref()
        .is_some_and(|expected| tokens_match(expected, presented))
    {
        return Some(Identity::Token {
            name: SERVER_TOKEN_NAME.to_owned(),
            scopes: Scopes::ALL,
            sessions: None,
        });
    }
    config.tokens.iter().find_map(|named| {
        let value = named.value()?;
        // A token with an unknown scope or a bad session pattern was refused when the config
        // was loaded.
        let scopes = named.scope_set().ok()?;
        let sessions = named.session_filter().ok()?;
        tokens_match(&value, presented).then(|| Identity::Token {
            name: named.name.clone(),
            scopes,
            sessions,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = v.parse() {
                h.append(*k, v);
            }
        }
        h
    }

    fn config(token: Option<&str>) -> ServerConfig {
        ServerConfig {
            token: token.map(str::to_owned),
            ..ServerConfig::default()
        }
    }

    fn server_token() -> Identity {
        Identity::Token {
            name: SERVER_TOKEN_NAME.to_owned(),
            scopes: Scopes::ALL,
            sessions: None,
        }
    }

    #[test]
    fn named_tokens_carry_their_scopes() {
        let c = ServerConfig {
            tokens: vec![crate::config::NamedToken {
                name: "status-page".into(),
                token: Some("read-only-token-1".into()),
                scopes: vec!["read".into()],
                ..Default::default()
            }],
            ..config(Some("secret-token"))
        };
        let l = FailureLimiter::default();
        let h = headers(&[("authorization", "Bearer read-only-token-1")]);
        let identity = authenticate(&c, &l, &h, PEER);
        let read_only = Scopes::NONE.with(flynn_protocol::types::Scope::Read);
        assert_eq!(
            identity,
            Ok(Identity::Token {
                name: "status-page".into(),
                scopes: read_only,
                sessions: None,
            })
        );
        assert_eq!(identity.map(|i| i.scopes()), Ok(read_only));
        let h = headers(&[("authorization", "Bearer secret-token")]);
        assert_eq!(authenticate(&c, &l, &h, PEER), Ok(server_token()));
        // Only named tokens: still no open door.
        let only_named = ServerConfig {
            token: None,
            ..c.clone()
        };
        assert_eq!(
            authenticate(&only_named, &l, &headers(&[]), PEER),
            Err(AuthError::Missing)
        );
    }

    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5000);
    const REMOTE: SocketAddr =
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(100, 64, 0, 2)), 5000);

    #[test]
    fn bearer_header_and_subprotocol() {
        let c = config(Some("secret-token"));
        let l = FailureLimiter::default();
        assert_eq!(
            authenticate(
                &c,
                &l,
                &headers(&[("authorization", "Bearer secret-token")]),
                PEER
            ),
            Ok(server_token())
        );
        let entry = format!(
            "flynn.v1, {BEARER_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("secret-token")
        );
        assert_eq!(
            authenticate(
                &c,
                &l,
                &headers(&[("sec-websocket-protocol", &entry)]),
                PEER
            ),
            Ok(server_token())
        );
        assert_eq!(
            authenticate(&c, &l, &headers(&[]), PEER),
            Err(AuthError::Missing)
        );
        assert_eq!(
            authenticate(&c, &l, &headers(&[("authorization", "Bearer nope")]), PEER),
            Err(AuthError::Wrong)
        );
    }

    #[test]
    fn failures_are_rate_limited_per_address() {
        let c = ServerConfig {
            auth_failures_per_minute: 2,
            ..config(Some("secret-token"))
        };
        let l = FailureLimiter::default();
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(authenticate(&c, &l, &wrong, PEER), Err(AuthError::Wrong));
        assert_eq!(authenticate(&c, &l, &wrong, PEER), Err(AuthError::Wrong));
        assert!(matches!(
            authenticate(&c, &l, &wrong, PEER),
            Err(AuthError::RateLimited(_))
        ));
        // Another address is unaffected.
        assert_eq!(authenticate(&c, &l, &wrong, REMOTE), Err(AuthError::Wrong));
        // The right token still passes from the limited address, and a missing one is not
        // counted (nor limited).
        let right = headers(&[("authorization", "Bearer secret-token")]);
        assert_eq!(authenticate(&c, &l, &right, PEER), Ok(server_token()));
        assert_eq!(
            authenticate(&c, &l, &headers(&[]), REMOTE),
            Err(AuthError::Missing)
        );
        assert_eq!(authenticate(&c, &l, &wrong, REMOTE), Err(AuthError::Wrong));
    }

    #[test]
    fn scheme_is_case_insensitive_and_mapped_loopback_is_loopback() {
        let c = config(Some("secret-token"));
        let l = FailureLimiter::default();
        for value in [
            "BEARER secret-token",
            "bearer  secret-token",
            "BeArEr secret-token",
        ] {
            assert_eq!(
                authenticate(&c, &l, &headers(&[("authorization", value)]), PEER),
                Ok(server_token()),
                "{value}"
            );
        }
        assert_eq!(
            authenticate(
                &c,
                &l,
                &headers(&[("authorization", "Basic secret-token")]),
                PEER
            ),
            Err(AuthError::Missing)
        );
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap_or(PEER);
        assert!(is_loopback_peer(mapped));
        assert!(!is_loopback_peer(REMOTE));
    }

    #[test]
    fn a_bearer_entry_needs_the_protocol_name() {
        assert!(
            check_subprotocol_offer(&headers(&[("sec-websocket-protocol", "flynn.bearer.eA")]))
                .is_err()
        );
        assert!(
            check_subprotocol_offer(&headers(&[(
                "sec-websocket-protocol",
                "flynn.v1, flynn.bearer.eA"
            )]))
            .is_ok()
        );
        assert!(check_subprotocol_offer(&headers(&[])).is_ok());
    }

    #[test]
    fn tailscale_header_only_from_loopback() {
        let c = ServerConfig {
            tailscale_identity: true,
            ..config(Some("secret-token"))
        };
        let l = FailureLimiter::default();
        let h = headers(&[("tailscale-user-login", "alice@example.com")]);
        assert_eq!(
            authenticate(&c, &l, &h, PEER),
            Ok(Identity::Tailscale("alice@example.com".into()))
        );
        assert_eq!(authenticate(&c, &l, &h, REMOTE), Err(AuthError::Missing));
    }
}
