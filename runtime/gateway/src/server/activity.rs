//! The HTTP side's timeouts: what a connection is doing (requests in flight, answered yet,
//! bytes since the last answer), and the stream under hyper that notes when bytes arrive.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tls::Transport;

/// What an HTTP connection is doing, for its timeouts: requests being answered, whether one
/// was answered yet, and whether bytes arrived since the last answer (a next request being read,
/// which `header_read_timeout` bounds).
#[derive(Debug)]
pub(super) struct Activity {
    in_flight: AtomicUsize,
    answered: AtomicBool,
    read_since_answer: AtomicBool,
    idle_since: Mutex<tokio::time::Instant>,
    /// Notified when an answer ends, so the watchdog re-arms for the idle time.
    pub(super) answer_ended: tokio::sync::Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            read_since_answer: AtomicBool::new(false),
            idle_since: Mutex::new(tokio::time::Instant::now()),
            answer_ended: tokio::sync::Notify::new(),
        }
    }
}

/// A request being answered; dropping it marks the answer.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        if let Ok(mut since) = a.idle_since.lock() {
            *since = tokio::time::Instant::now();
        }
        a.read_since_answer.store(false, Ordering::Release);
        a.answered.store(true, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.answer_ended.notify_one();
    }
}

impl Activity {
    pub(super) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// When to look again.
    pub(super) fn deadline(
        &self,
        accepted: tokio::time::Instant,
        handshake: Duration,
        idle: Duration,
    ) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0
            || self.read_since_answer.load(Ordering::Acquire)
        {
            return now + idle.min(handshake);
        }
        if !self.answered.load(Ordering::Acquire) {
            return accepted + handshake;
        }
        let since = self
            .idle_since
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner());
        since + idle
    }

    /// Whether the connection has run out of time: no answer within the handshake time, or
    /// idle (nothing in flight, nothing arriving) for the idle time.
    pub(super) fn expired(
        &self,
        accepted: tokio::time::Instant,
        handshake: Duration,
        idle: Duration,
    ) -> bool {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        if !self.answered.load(Ordering::Acquire) {
            return now >= accepted + handshake;
        }
        if self.read_since_answer.load(Ordering::Acquire) {
            return false;
        }
        let since = self
            .idle_since
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner());
        now >= since + idle
    }
}

/// The TCP stream under hyper, noting when bytes arrive (for the idle timeout).
#[derive(Debug)]
pub(super) struct WatchedStream {
    pub(super) inner: Transport,
    pub(super) activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for WatchedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity
                .read_since_answer
                .store(true, Ordering::Release);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
