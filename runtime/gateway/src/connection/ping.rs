//! The connection's ping timer, cheap to wait on. The loop waits on it in every round, and
//! most rounds (a request in, its reply out) end long before a ping is due: polling a tokio
//! timer again each time (the task's budget, its state, the waker comparison) cost about 145
//! instructions per round, 1.3 % of a `system.info` request at one in flight. Once a poll has
//! left this task's waker with the timer, the timer wakes the task when it fires, and until
//! then a look at whether it has fired (one atomic load) says all a poll would.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Ticks every `period`; ticks missed while the connection was busy are not made up (as
/// tokio's `MissedTickBehavior::Delay`).
pub(super) struct PingTimer {
    /// Boxed: inline, the timer would widen every idle connection's future.
    sleep: Pin<Box<Sleep>>,
    period: Duration,
    /// The last poll returned `Pending` and registered this task's waker with the timer (it
    /// had coop budget left: a poll without budget returns `Pending` without registering).
    /// The loop runs in one task for its whole life (spawned per connection), so every later
    /// poll would pass the same waker: until the timer fires, there is nothing to poll for.
    armed: bool,
}

impl PingTimer {
    /// The first tick comes `period` from now.
    pub(super) fn new(period: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(period)),
            period,
            armed: false,
        }
    }

    /// Completes when a ping is due.
    pub(super) fn tick(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_tick(cx))
    }

    fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // `is_elapsed` turns true when the timer fires, before it wakes the task.
        if self.armed && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            self.armed = tokio::task::coop::has_budget_remaining();
            return Poll::Pending;
        }
        self.armed = false;
        let due = self.sleep.deadline();
        let now = Instant::now();
        // tokio's `Interval` rule: on time (within 5 ms), the next tick is a period after this
        // one was due; late, a period from now.
        let next = if now > due + Duration::from_millis(5) {
            now + self.period
        } else {
            due + self.period
        };
        self.sleep.as_mut().reset(next);
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a tick may take before the test fails: far above any load.
    const LIVENESS: Duration = Duration::from_secs(60);

    /// One poll with this task's own waker (as the loop polls it).
    async fn poll_once(ping: &mut PingTimer) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(ping.poll_tick(cx))).await
    }

    async fn ticks(ping: &mut PingTimer) {
        tokio::time::timeout(LIVENESS, ping.tick())
            .await
            .unwrap_or_else(|_| panic!("no tick within {LIVENESS:?}: the timer's wakeup was lost"));
    }

    /// Armed after a pending poll, the timer still completes once it fires: the wakeup comes
    /// from the timer, and the look at `is_elapsed` lets the poll through.
    #[tokio::test]
    async fn ticks_again_and_again_after_pending_polls() {
        let mut ping = PingTimer::new(Duration::from_millis(10));
        for _ in 0..3 {
            if poll_once(&mut ping).await.is_pending() {
                assert!(ping.armed, "a pending poll with budget arms the timer");
            }
            ticks(&mut ping).await;
            assert!(!ping.armed, "a tick disarms");
        }
    }

    /// A poll that finds the task's coop budget spent registers nothing: the timer must not
    /// count as armed then, or its tick would never come.
    #[tokio::test]
    async fn a_poll_without_budget_does_not_arm() {
        let mut ping = PingTimer::new(Duration::from_millis(10));
        while tokio::task::coop::has_budget_remaining() {
            tokio::task::coop::consume_budget().await;
        }
        assert!(poll_once(&mut ping).await.is_pending());
        assert!(!ping.armed, "a poll without budget must not arm the timer");
        ticks(&mut ping).await;
    }
}
