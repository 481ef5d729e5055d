//! Who gets a socket before authenticating: connections not yet authenticated are counted from
//! accept and capped (`server.max_unauthenticated_connections`); when the cap is reached the
//! oldest is closed to make room, so clients that never finish a request cannot starve a real
//! client (they would otherwise hold descriptors until the process runs out). Also: raising the
//! descriptor limit at start, and backing off quietly when `accept` fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Connections accepted but not yet authenticated, oldest first.
#[derive(Debug, Default)]
pub struct Unauthenticated {
    waiting: Mutex<BTreeMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    evicted: AtomicU64,
}

/// A connection's place among the unauthenticated ones; leaving it (drop, or `admit`) frees it.
/// `evicted()` resolves when the connection must close to make room for a newer one.
#[derive(Debug)]
pub struct Pending {
    id: u64,
    evict: CancellationToken,
    registry: Arc<Unauthenticated>,
}

impl Unauthenticated {
    /// Takes a place for a just-accepted connection, closing the oldest when `cap` are waiting.
    pub fn enter(self: &Arc<Self>, cap: usize) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = CancellationToken::new();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        while waiting.len() >= cap.max(1) {
            let Some((_, oldest)) = waiting.pop_first() else {
                break;
            };
            oldest.cancel();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        waiting.insert(id, evict.clone());
        Pending {
            id,
            evict,
            registry: self.clone(),
        }
    }

    /// How many connections wait now.
    pub fn count(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// How many were closed to make room since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    fn leave(&self, id: u64) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&id);
        }
    }
}

impl Pending {
    /// Resolves when this connection is closed to make room.
    pub async fn evicted(&self) {
        self.evict.cancelled().await;
    }

    /// The connection authenticated: it no longer counts (nor can it be evicted).
    pub fn admit(self) {}
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.registry.leave(self.id);
    }
}

/// Raises the soft limit on open descriptors to the hard limit, so the connection caps, not the
/// default soft limit (often 1,024), bound the number of clients. Returns the limit in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            info!(limit, "open-descriptor limit");
            Some(limit)
        }
        Err(e) => {
            warn!(error = %e, "could not raise the open-descriptor limit");
            None
        }
    }
}

/// Backs off after failed `accept` calls (typically EMFILE: out of descriptors) without
/// spinning and without flooding the log: one warning per interval, with the count of failures
/// it stands for.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    last_warning: Option<Instant>,
    suppressed: u64,
}

const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            delay: FIRST_DELAY,
            last_warning: None,
            suppressed: 0,
        }
    }
}

impl AcceptBackoff {
    /// Records a failure; returns how long to wait before accepting again.
    pub fn failed(&mut self, error: &std::io::Error) -> Duration {
        let now = Instant::now();
        let due = self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARNING_INTERVAL);
        if due {
            warn!(
                error = %error,
                failures_since_last_warning = self.suppressed + 1,
                "accept failed; backing off (out of descriptors? lower server.max_connections or raise the limit)"
            );
            self.last_warning = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        delay
    }

    /// An accept succeeded: the next failure starts from the shortest delay again.
    pub fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_makes_room() {
        let registry = Arc::new(Unauthenticated::default());
        let first = registry.enter(2);
        let second = registry.enter(2);
        assert_eq!(registry.count(), 2);
        let third = registry.enter(2);
        assert_eq!(registry.count(), 2);
        assert_eq!(registry.evicted(), 1);
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .unwrap_or_else(|_| panic!("the oldest is evicted"));
        second.admit();
        assert_eq!(registry.count(), 1);
        drop(third);
        assert_eq!(registry.count(), 0);
        drop(first);
        assert_eq!(registry.count(), 0);
    }

    #[test]
    fn backoff_grows_and_resets() {
        let mut b = AcceptBackoff::default();
        let e = std::io::Error::other("EMFILE");
        let d1 = b.failed(&e);
        let d2 = b.failed(&e);
        assert!(d2 > d1);
        for _ in 0..20 {
            assert!(b.failed(&e) <= MAX_DELAY);
        }
        assert_eq!(b.suppressed, 21);
        b.succeeded();
        assert_eq!(b.failed(&e), FIRST_DELAY);
    }
}
