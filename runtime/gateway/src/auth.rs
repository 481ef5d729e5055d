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

use crate::config::ServerConfig;

/// The subprotocol the gateway selects when a client offers it.
pub const SUBPROTOCOL: &str = "flynn.v1";
/// Prefix of the subprotocol entry carrying `base64url(token)` (no padding).
pub const BEARER_PREFIX: &str = "flynn.bearer.";
/// The header Tailscale Serve sets.
pub const TAILSCALE_LOGIN_HEADER: &str = "tailscale-user-login";

/// Who a request is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No token is configured.
    Open,
    Token,
    Tailscale(String),
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
    #[error("origin `{0}` is not allowed to open a WebSocket; add it to server.allowed_origins")]
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
        let value = value.trim();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or("");
        return Some(token.trim().to_owned());
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

/// Authenticates a request (WebSocket upgrade or HTTP) from `peer`.
pub fn authenticate(
    config: &ServerConfig,
    limiter: &FailureLimiter,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Identity, AuthError> {
    if config.tailscale_identity
        && peer.ip().is_loopback()
        && let Some(login) = headers
            .get(TAILSCALE_LOGIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    {
        return Ok(Identity::Tailscale(login.to_owned()));
    }
    let Some(expected) = config.token.as_deref() else {
        return Ok(Identity::Open);
    };
    if let Some(wait) = limiter.blocked_for(peer.ip(), config.auth_failures_per_minute) {
        return Err(AuthError::RateLimited(wait));
    }
    match presented_token(headers) {
        // Missing credentials count too: otherwise a client without a token could retry freely.
        None => {
            limiter.record_failure(peer.ip());
            Err(AuthError::Missing)
        }
        Some(token) if token.is_empty() => {
            limiter.record_failure(peer.ip());
            Err(AuthError::Missing)
        }
        Some(token) if tokens_match(expected, &token) => Ok(Identity::Token),
        Some(_) => {
            limiter.record_failure(peer.ip());
            Err(AuthError::Wrong)
        }
    }
}

/// Browsers send `Origin`; a page from elsewhere must not drive a local gateway. Clients that
/// are not browsers send none and pass.
pub fn check_origin(config: &ServerConfig, headers: &HeaderMap) -> Result<(), AuthError> {
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    if config
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin)
    {
        return Ok(());
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(AuthError::Origin(origin.to_owned()))
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
            Ok(Identity::Token)
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
            Ok(Identity::Token)
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

    #[test]
    fn origin_must_match_host_or_allow_list() {
        let c = ServerConfig {
            allowed_origins: vec!["https://app.example".into()],
            ..config(None)
        };
        assert!(check_origin(&c, &headers(&[])).is_ok());
        assert!(
            check_origin(
                &c,
                &headers(&[
                    ("origin", "http://127.0.0.1:18800"),
                    ("host", "127.0.0.1:18800")
                ])
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &c,
                &headers(&[
                    ("origin", "https://app.example"),
                    ("host", "127.0.0.1:18800")
                ])
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &c,
                &headers(&[
                    ("origin", "https://evil.example"),
                    ("host", "127.0.0.1:18800")
                ])
            )
            .is_err()
        );
        assert!(
            check_origin(
                &c,
                &headers(&[("origin", "null"), ("host", "127.0.0.1:18800")])
            )
            .is_err()
        );
    }
}
