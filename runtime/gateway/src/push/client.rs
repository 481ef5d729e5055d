//! The HTTP client of push sends: the outbound client's TLS, timeouts and user agent
//! (`flynn_models::web_client_builder`, as `crate::outbound::client`), plus two guards, since the
//! URL comes from whoever registered the subscription:
//!
//! - no redirects (the shared builder's, tested here too): a push service answers 201 itself; a
//!   redirect would let an endpoint send the gateway anywhere;
//! - a resolver that drops the private and local addresses a name resolves to (at connect time,
//!   so a name re-pointed after registration is caught too), loopback admitted only with
//!   `push.allow_insecure_loopback`. IP literals never reach a resolver: the endpoint check
//!   (`super::subscriptions::check_endpoint`) refuses them before sending.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::subscriptions::address_allowed;
use crate::outbound::OutboundError;

/// Resolves with the system resolver, keeping only addresses a push may go to.
pub struct GuardedResolver {
    /// `push.allow_insecure_loopback`, updated by the sender before each send.
    pub allow_loopback: Arc<AtomicBool>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback.load(Ordering::Relaxed);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| address_allowed(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "`{host}` resolves only to private or local addresses; a push endpoint must be a public push service"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Builds the push client.
pub fn build(allow_loopback: Arc<AtomicBool>) -> Result<reqwest::Client, OutboundError> {
    flynn_models::web_client_builder(
        concat!("flynn-gateway/", env!("CARGO_PKG_VERSION")),
        Duration::from_secs(10),
    )
    .map_err(|e| OutboundError::Client(e.to_string()))?
    .dns_resolver(GuardedResolver { allow_loopback })
    .build()
    .map_err(|e| OutboundError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resolve(host: &str, allow_loopback: bool) -> Result<Vec<SocketAddr>, String> {
        let resolver = GuardedResolver {
            allow_loopback: Arc::new(AtomicBool::new(allow_loopback)),
        };
        let name: Name = host.parse().map_err(|_| "bad name".to_owned())?;
        resolver
            .resolve(name)
            .await
            .map(|a| a.collect())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn names_of_this_machine_resolve_only_when_loopback_is_allowed() {
        let refused = resolve("localhost", false).await.unwrap_err();
        assert!(refused.contains("private or local"), "{refused}");
        let allowed = resolve("localhost", true).await.unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()));
    }
}
