//! Web Push for the web chat: browsers register a `PushSubscription` for a session, and when a
//! turn of that session ends while no WebSocket connection is attached to it, each of them gets
//! a notification with the start of the answer.
//!
//! - [`config`] holds `[push]`.
//! - [`vapid`]: the gateway's VAPID key pair (RFC 8292), configured or generated and kept.
//! - [`subscriptions`]: what a browser registers, and the endpoint policy (no private networks).
//! - [`routes`]: `GET /webchat/push/public-key`, `GET|POST|DELETE /webchat/push/subscriptions`.
//! - [`sender`]: encrypting (RFC 8291 `aes128gcm`) and sending when a turn finishes.
//! - [`client`]: the HTTP client of sends (no redirects, no private addresses).
//!
//! Subscriptions live in the store (`flynn_store::PushSubscriptionRecord`, capped by
//! `push.max_subscriptions`).

pub mod client;
pub mod config;
pub mod encoding;
pub mod routes;
pub mod sender;
pub mod subscriptions;
pub mod vapid;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub use config::PushConfig;
pub use encoding::BASE64URL;
pub use vapid::{KeyOrigin, VapidError, VapidKey};

/// The gateway's push state: the VAPID key once loaded and the HTTP client once built.
#[derive(Default)]
pub struct Push {
    key: tokio::sync::Mutex<Option<(KeyOrigin, Arc<VapidKey>)>>,
    client: OnceLock<reqwest::Client>,
    /// `push.allow_insecure_loopback` as the client's resolver sees it.
    allow_loopback: Arc<AtomicBool>,
}

impl Push {
    /// The VAPID key the configuration names, loaded (or generated) on first use and kept
    /// until the configuration names another one.
    pub async fn vapid_key(
        &self,
        config: &crate::Config,
    ) -> Result<(KeyOrigin, Arc<VapidKey>), VapidError> {
        let origin = KeyOrigin::configured(config);
        let mut cached = self.key.lock().await;
        if let Some((loaded, key)) = cached.as_ref()
            && *loaded == origin
        {
            return Ok((origin, key.clone()));
        }
        let key = Arc::new(vapid::load(&origin).await?);
        *cached = Some((origin.clone(), key.clone()));
        Ok((origin, key))
    }

    /// The push client ([`client`]), built once; `allow_loopback` is the current
    /// `push.allow_insecure_loopback`.
    pub fn client(
        &self,
        allow_loopback: bool,
    ) -> Result<reqwest::Client, crate::outbound::OutboundError> {
        self.allow_loopback.store(allow_loopback, Ordering::Relaxed);
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = client::build(self.allow_loopback.clone())?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}
