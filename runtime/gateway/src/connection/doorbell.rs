//! The notifier the connection's loop waits on for events (and for being woken: slow consumer,
//! shutdown), cheap to wait on. Like the ping timer (`ping`): the loop waits on it in every
//! round, and most rounds (a request in, its reply out) have nothing to do with it; polling
//! tokio's `Notified` again each time takes the `Notify`'s lock, about 77 instructions a poll,
//! two polls per `system.info` request at one in flight (BENCHMARKS.md, finding 35). Once a
//! poll has left the task's waker with it, a ring wakes the task, and until then a look at
//! the `rung` flag (one atomic load) says all a poll would.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A `Notify` with a flag saying it was rung since its waiter last woke.
#[derive(Debug, Default)]
pub(super) struct Doorbell {
    notify: Notify,
    /// Set before every notification; cleared when the waiter takes one.
    rung: AtomicBool,
}

impl Doorbell {
    /// Wakes the waiter (or lets its next wait end at once), as `Notify::notify_one`.
    pub(super) fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// A future for the next ring; wait on it with [`Doorbell::rung`].
    pub(super) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// Completes when `notified` does. `armed` belongs to `notified` and starts `false`: it
    /// is set when a poll returned `Pending`, which left the task's waker with the `Notify`
    /// (its waiter list; `Notify` takes no coop budget, so a pending poll always registers).
    /// The loop runs in one task for its whole life, so later polls would pass the same waker:
    /// while armed and not rung, there is nothing to poll for. A ring sets `rung` before it
    /// notifies, so the wakeup it causes finds it set. A ring that comes while no poll is
    /// registered leaves tokio's permit, which the next poll of an unarmed `Notified` takes.
    pub(super) fn rung<'a, 'n>(
        &'a self,
        mut notified: Pin<&'a mut Notified<'n>>,
        armed: &'a mut bool,
    ) -> impl Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            if *armed && !self.rung.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            match notified.as_mut().poll(cx) {
                Poll::Pending => {
                    *armed = true;
                    Poll::Pending
                }
                Poll::Ready(()) => {
                    *armed = false;
                    // A ring between the wakeup and here left a permit too: the next
                    // (unarmed) `Notified` takes it at its first poll.
                    self.rung.store(false, Ordering::Release);
                    Poll::Ready(())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// How long a wait may take before the test fails: far above any load.
    const LIVENESS: Duration = Duration::from_secs(60);

    /// Waits as the loop does: one `Notified` per wakeup, armed after a pending poll.
    async fn wakes(bell: &Doorbell, notified: Pin<&mut Notified<'_>>, armed: &mut bool) {
        tokio::time::timeout(LIVENESS, bell.rung(notified, armed))
            .await
            .unwrap_or_else(|_| panic!("no wakeup within {LIVENESS:?}: a ring was lost"));
    }

    /// Rings from another task, while the waiter is armed, between its waits and before its
    /// first wait: each is seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_ring_is_lost() {
        let bell = Arc::new(Doorbell::default());
        for round in 0..200 {
            let notified = bell.notified();
            tokio::pin!(notified);
            let mut armed = false;
            // One poll first, so the waiter is armed when the ring comes (most rounds).
            let first = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut bell.rung(notified.as_mut(), &mut armed)).poll(cx))
            })
            .await;
            if first.is_ready() {
                continue;
            }
            assert!(armed, "a pending poll arms");
            let ringer = bell.clone();
            let ring = tokio::spawn(async move {
                if round % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                ringer.ring();
            });
            wakes(&bell, notified.as_mut(), &mut armed).await;
            assert!(!armed, "a wakeup disarms");
            let _ = ring.await;
        }
    }

    /// A ring while nobody waits is kept for the next wait.
    #[tokio::test]
    async fn a_ring_before_the_wait_ends_it_at_once() {
        let bell = Doorbell::default();
        bell.ring();
        let notified = bell.notified();
        tokio::pin!(notified);
        let mut armed = false;
        wakes(&bell, notified.as_mut(), &mut armed).await;
    }

    /// Armed and not rung, a poll does not reach the `Notify` (the point of the flag); rung,
    /// it does.
    #[tokio::test]
    async fn an_armed_wait_looks_only_at_the_flag() {
        let bell = Doorbell::default();
        let notified = bell.notified();
        tokio::pin!(notified);
        let mut armed = true;
        // Not registered (never polled), so only the flag can end this wait: it must not.
        let poll = std::future::poll_fn(|cx| {
            Poll::Ready(Pin::new(&mut bell.rung(notified.as_mut(), &mut armed)).poll(cx))
        })
        .await;
        assert!(poll.is_pending());
        bell.ring();
        wakes(&bell, notified.as_mut(), &mut armed).await;
    }
}
