//! What a browser registers: its `PushSubscription.toJSON()` (`endpoint`, `expirationTime`,
//! `keys.p256dh`, `keys.auth`) plus the `sessionId` it follows, checked before anything is
//! stored or sent.
//!
//! Endpoint policy (the gateway POSTs to whatever URL a subscription names, so the URL must not
//! reach the operator's own network): an absolute `https://` URL of at most
//! [`MAX_ENDPOINT_LEN`] bytes, without user info, whose host is a DNS name or a public IP
//! address: loopback, private, link-local, unspecified and multicast addresses and `localhost`
//! are refused. `push.allow_insecure_loopback` lets loopback hosts through, over `http://` too
//! (local push services, tests). A DNS name is not resolved here: the push client's resolver
//! (`super::client`) applies the same rule to the addresses a name resolves to, at connect time.

use std::net::IpAddr;

use base64::Engine;
use serde::Deserialize;

use super::encoding::BASE64URL;

/// The longest endpoint URL accepted, in bytes (push services use a few hundred).
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// The body of `POST /webchat/push/subscriptions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeBody {
    pub endpoint: Option<String>,
    /// Epoch milliseconds, or null (the browser's `expirationTime`).
    pub expiration_time: Option<f64>,
    pub keys: Option<SubscribeKeys>,
    pub session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SubscribeKeys {
    pub p256dh: Option<String>,
    pub auth: Option<String>,
}

/// The body of `DELETE /webchat/push/subscriptions`.
#[derive(Debug, Deserialize)]
pub struct UnsubscribeBody {
    pub endpoint: Option<String>,
}

/// A checked subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: reqwest::Url,
    pub session_id: String,
    /// The browser's public key: an uncompressed P-256 point (65 bytes), base64url as received.
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url as received.
    pub auth: String,
    pub expiration_ms: Option<i64>,
}

/// A field that is missing or wrong: `path` names it (`keys.p256dh`), `message` says what to
/// send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub path: &'static str,
    pub message: String,
}

fn invalid(path: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

impl SubscribeBody {
    /// Checks every field; `allow_loopback` is `push.allow_insecure_loopback`.
    pub fn check(self, allow_loopback: bool) -> Result<Subscription, Invalid> {
        let endpoint = self
            .endpoint
            .ok_or_else(|| invalid("endpoint", "endpoint is missing; send the browser's PushSubscription.toJSON() with a sessionId"))?;
        let endpoint = check_endpoint(&endpoint, allow_loopback)?;
        let keys = self.keys.ok_or_else(|| {
            invalid(
                "keys",
                "keys is missing; send the subscription's keys.p256dh and keys.auth",
            )
        })?;
        let p256dh = keys
            .p256dh
            .ok_or_else(|| invalid("keys.p256dh", "keys.p256dh is missing"))?;
        decode_p256dh(&p256dh)?;
        let auth = keys
            .auth
            .ok_or_else(|| invalid("keys.auth", "keys.auth is missing"))?;
        decode_auth(&auth)?;
        let session_id = self.session_id.ok_or_else(|| {
            invalid(
                "sessionId",
                "sessionId is missing; name the session whose answers this browser should be notified of",
            )
        })?;
        crate::session_id::validate_session_id(&session_id, "sessionId")
            .map_err(|e| invalid("sessionId", e.message))?;
        let expiration_ms = match self.expiration_time {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 && t <= flynn_store::MAX_MS as f64 => {
                Some(t as i64)
            }
            Some(_) => {
                return Err(invalid(
                    "expirationTime",
                    "expirationTime must be null or epoch milliseconds",
                ));
            }
        };
        Ok(Subscription {
            endpoint,
            session_id,
            p256dh,
            auth,
            expiration_ms,
        })
    }
}

/// Checks an endpoint URL against the module's policy.
pub fn check_endpoint(text: &str, allow_loopback: bool) -> Result<reqwest::Url, Invalid> {
    if text.len() > MAX_ENDPOINT_LEN {
        return Err(invalid(
            "endpoint",
            format!("endpoint is longer than {MAX_ENDPOINT_LEN} bytes"),
        ));
    }
    let url = reqwest::Url::parse(text).map_err(|e| {
        invalid(
            "endpoint",
            format!(
                "endpoint is not an absolute URL ({e}); send the browser's subscription endpoint"
            ),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("endpoint", "endpoint must not carry user info"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_loopback)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_loopback)?,
        None => return Err(invalid("endpoint", "endpoint has no host")),
    };
    if loopback && !allow_loopback {
        return Err(invalid(
            "endpoint",
            "endpoint points at this machine; push endpoints are the browser's push service (set push.allow_insecure_loopback only for a local test service)",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback && allow_loopback => Ok(url),
        other => Err(invalid(
            "endpoint",
            format!("endpoint must be an https:// URL, not {other}://"),
        )),
    }
}

/// What kind of address an endpoint (or what its name resolves to) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// This machine: 127.0.0.0/8, ::1 (and their IPv4-mapped forms).
    Loopback,
    /// A private, link-local, CGNAT, unspecified, multicast or broadcast address.
    Private,
    Public,
}

/// Classifies `ip` for the endpoint policy.
pub fn address_kind(ip: IpAddr) -> AddressKind {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return AddressKind::Loopback;
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                // 100.64.0.0/10: carrier-grade NAT and Tailscale addresses.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if private {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

/// Whether the gateway may connect to `ip` for a push (`allow_loopback`:
/// `push.allow_insecure_loopback`).
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match address_kind(ip) {
        AddressKind::Public => true,
        AddressKind::Loopback => allow_loopback,
        AddressKind::Private => false,
    }
}

/// Whether `ip` is loopback; refuses addresses of private networks.
fn check_ip(ip: IpAddr, allow_loopback: bool) -> Result<bool, Invalid> {
    match address_kind(ip) {
        AddressKind::Loopback => Ok(true),
        AddressKind::Public => Ok(false),
        AddressKind::Private => {
            let hint = if allow_loopback {
                " (push.allow_insecure_loopback allows loopback only)"
            } else {
                ""
            };
            Err(invalid(
                "endpoint",
                format!("endpoint points at a private or local network address{hint}"),
            ))
        }
    }
}

/// Decodes `keys.p256dh`: an uncompressed point on P-256.
pub fn decode_p256dh(text: &str) -> Result<p256::PublicKey, Invalid> {
    let bytes = BASE64URL
        .decode(text)
        .map_err(|_| invalid("keys.p256dh", "keys.p256dh is not base64url"))?;
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(invalid(
            "keys.p256dh",
            "keys.p256dh must be an uncompressed P-256 point (65 bytes, starting 0x04)",
        ));
    }
    p256::PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| invalid("keys.p256dh", "keys.p256dh is not a point on P-256"))
}

/// Decodes `keys.auth`: 16 bytes.
pub fn decode_auth(text: &str) -> Result<[u8; 16], Invalid> {
    let bytes = BASE64URL
        .decode(text)
        .map_err(|_| invalid("keys.auth", "keys.auth is not base64url"))?;
    bytes
        .try_into()
        .map_err(|_| invalid("keys.auth", "keys.auth must decode to 16 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_the_local_network_are_refused() {
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://10.0.0.8/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://[fd00::1]/x",
            "https://100.100.1.1/x",
            "https://user:pw@push.example.com/x",
            "ftp://push.example.com/x",
            "push.example.com/x",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad} was accepted");
        }
        assert!(check_endpoint("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        assert!(check_endpoint("https://8.8.8.8/x", false).is_ok());
    }

    #[test]
    fn loopback_only_when_allowed() {
        assert!(check_endpoint("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_endpoint("http://localhost:9/x", true).is_ok());
        assert!(check_endpoint("http://10.0.0.1/x", true).is_err());
        assert!(check_endpoint("http://push.example.com/x", true).is_err());
    }
}
