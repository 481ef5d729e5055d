//! `[push]`: Web Push for the web chat.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest `ttl_secs`: four weeks, what push services keep a message at most.
pub const MAX_TTL_SECS: u32 = 28 * 24 * 60 * 60;
/// The highest `max_subscriptions`.
pub const MAX_SUBSCRIPTIONS_LIMIT: u64 = 100_000;

/// `[push]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Serve the `/webchat/push/*` routes' registrations and send notifications. Off: the
    /// routes answer `enabled: false` (GET) or 409 (POST), and nothing is sent.
    pub enabled: bool,
    /// The VAPID `sub` claim (RFC 8292): a `mailto:` or `https:` contact of the operator, which
    /// push services use to reach them. Some services (Apple's) refuse pushes without it.
    pub subject: Option<String>,
    /// The environment variable holding the VAPID private key: the P-256 scalar, 32 bytes,
    /// base64url. Unset: a key is generated on first use and kept in
    /// `<data_dir>/push/vapid-private-key` (mode 0600).
    pub vapid_private_key_env: Option<String>,
    /// At most this many subscriptions are stored (all sessions together); registering a new
    /// endpoint beyond it is refused with 409.
    pub max_subscriptions: u64,
    /// How long a push service keeps an undelivered notification (the `TTL` header), seconds.
    pub ttl_secs: u32,
    /// Also accept endpoints on loopback addresses (`127.0.0.0/8`, `::1`, `localhost`), over
    /// `http://` too. For tests and local push services only: other private, link-local and
    /// loopback addresses are always refused, so a subscription cannot aim the gateway at the
    /// operator's network.
    pub allow_insecure_loopback: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            subject: None,
            vapid_private_key_env: None,
            max_subscriptions: 100,
            ttl_secs: 86_400,
            allow_insecure_loopback: false,
        }
    }
}

impl PushConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(subject) = &self.subject
            && !(subject.starts_with("mailto:") || subject.starts_with("https://"))
        {
            return Err(format!(
                "push.subject `{subject}` must be a `mailto:` or `https://` URL (RFC 8292), e.g. \"mailto:you@example.com\""
            ));
        }
        if let Some(name) = &self.vapid_private_key_env
            && (name.is_empty() || name.contains(['=', '\0']))
        {
            return Err(
                "push.vapid_private_key_env must name an environment variable (no `=`)".into(),
            );
        }
        if !(1..=MAX_SUBSCRIPTIONS_LIMIT).contains(&self.max_subscriptions) {
            return Err(format!(
                "push.max_subscriptions must be between 1 and {MAX_SUBSCRIPTIONS_LIMIT}"
            ));
        }
        if self.ttl_secs > MAX_TTL_SECS {
            return Err(format!(
                "push.ttl_secs must be at most {MAX_TTL_SECS} (four weeks)"
            ));
        }
        Ok(())
    }
}
