//! Wrong pairing codes per sender (the lock-out of [`super::pairing`]). Its own module because
//! the gateway's shared state holds it ([`super::state::ChannelState`]) and that state must not
//! reach the pairing gate (which reaches the gateway).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Senders whose wrong codes are tracked at once; past it the stalest record is dropped.
pub const MAX_TRACKED_SENDERS: usize = 10_000;

/// Wrong pairing codes per (channel, sender), in memory (a restart forgives them; codes expire
/// in minutes anyway).
#[derive(Default)]
pub struct WrongCodes {
    failures: Mutex<HashMap<(String, String), Vec<Instant>>>,
}

impl WrongCodes {
    /// How long the sender must still wait, if it is locked out.
    pub fn locked(&self, key: &(String, String), limit: u32, window: Duration) -> Option<Duration> {
        let map = self.failures.lock().ok()?;
        let recent: Vec<&Instant> = map
            .get(key)?
            .iter()
            .filter(|at| at.elapsed() < window)
            .collect();
        if recent.len() < limit as usize {
            return None;
        }
        let oldest = recent.iter().min()?;
        Some(window.saturating_sub(oldest.elapsed()))
    }

    /// Counts a wrong code; returns how many tries are left in the window.
    pub fn fail(&self, key: (String, String), limit: u32, window: Duration) -> u32 {
        let Ok(mut map) = self.failures.lock() else {
            return 0;
        };
        if map.len() >= MAX_TRACKED_SENDERS && !map.contains_key(&key) {
            map.retain(|_, times| times.iter().any(|at| at.elapsed() < window));
            if map.len() >= MAX_TRACKED_SENDERS {
                let stalest = map
                    .iter()
                    .min_by_key(|(_, times)| times.iter().max().copied())
                    .map(|(k, _)| k.clone());
                if let Some(stalest) = stalest {
                    map.remove(&stalest);
                }
            }
        }
        let times = map.entry(key).or_default();
        times.retain(|at| at.elapsed() < window);
        times.push(Instant::now());
        limit.saturating_sub(times.len() as u32)
    }

    pub fn clear(&self, key: &(String, String)) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_codes_lock_out_after_the_limit() {
        let codes = WrongCodes::default();
        let key = ("bluebubbles".to_owned(), "+1555".to_owned());
        let window = Duration::from_secs(60);
        assert_eq!(codes.fail(key.clone(), 2, window), 1);
        assert!(codes.locked(&key, 2, window).is_none());
        assert_eq!(codes.fail(key.clone(), 2, window), 0);
        assert!(codes.locked(&key, 2, window).is_some());
        codes.clear(&key);
        assert!(codes.locked(&key, 2, window).is_none());
    }
}
