//! A budget on the bytes of incoming WebSocket messages being received, across all connections.
//! A per-frame limit alone lets ten clients each hold a 24 MiB frame half-sent; here each
//! connection may hold `inbound_free_bytes_per_connection` of an unfinished message for free
//! (so ordinary requests never touch the shared budget), and reads beyond that draw on
//! `server.max_inbound_bytes`. When it is spent, reads wait (TCP pushes back on the senders);
//! a read that waits longer than `server.inbound_wait_timeout_ms` fails, and the connection is closed with 1013
//! (try again later). Worst case held in unfinished messages: `max_inbound_bytes` plus
//! `inbound_free_bytes_per_connection` per connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::Transport;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

/// Budget unit: one permit per KiB.
const UNIT: usize = 1024;

/// The shared budget.
#[derive(Debug, Clone)]
pub struct InboundBudget {
    permits: Arc<Semaphore>,
    /// Permits the budget has in all.
    units: usize,
    free_per_connection: usize,
    stall: Duration,
}

/// The error a read returns when it waited too long for budget.
#[derive(Debug, thiserror::Error)]
#[error(
    "the gateway's inbound memory budget (server.max_inbound_bytes) is spent by other large messages; retry later"
)]
pub struct BudgetExhausted;

impl InboundBudget {
    pub fn new(total_bytes: usize, free_per_connection: usize, stall: Duration) -> Self {
        let units = (total_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(units)),
            units,
            free_per_connection,
            stall,
        }
    }

    /// Bytes of budget not drawn now.
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    /// Bytes of budget drawn now by unfinished messages (`/metrics`: `flynn_inbound_bytes`).
    pub fn used_bytes(&self) -> usize {
        self.units.saturating_sub(self.permits.available_permits()) * UNIT
    }

    /// Wraps a connection's stream.
    pub fn stream(&self, inner: Transport) -> BudgetedStream {
        BudgetedStream {
            inner,
            semaphore: PollSemaphore::new(self.permits.clone()),
            free_per_connection: self.free_per_connection,
            free_left: self.free_per_connection,
            credit: 0,
            held: None,
            stall: self.stall,
            stall_timer: None,
        }
    }
}

/// A TCP stream whose reads draw on the inbound budget once a message outgrows the free part.
#[derive(Debug)]
pub struct BudgetedStream {
    inner: Transport,
    semaphore: PollSemaphore,
    free_per_connection: usize,
    /// Free bytes left for the message being received.
    free_left: usize,
    /// Budgeted bytes acquired but not yet read into.
    credit: usize,
    held: Option<OwnedSemaphorePermit>,
    stall: Duration,
    stall_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl BudgetedStream {
    /// A whole message was received: what its reads drew goes back to the budget.
    pub fn message_done(&mut self) {
        self.free_left = self.free_per_connection;
        self.credit = 0;
        self.held = None;
    }

    /// The TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        self.inner.tcp()
    }

    /// Makes sure `want` bytes may be read: from the free part, else from the budget.
    fn poll_allowance(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.free_left > 0 {
            return Poll::Ready(Ok(want.min(self.free_left)));
        }
        if self.credit > 0 {
            return Poll::Ready(Ok(want.min(self.credit)));
        }
        let units = want.div_ceil(UNIT).clamp(1, u32::MAX as usize) as u32;
        match self.semaphore.poll_acquire_many(cx, units) {
            Poll::Ready(Some(permit)) => {
                self.stall_timer = None;
                self.credit = units as usize * UNIT;
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                Poll::Ready(Ok(want.min(self.credit)))
            }
            // The semaphore is never closed; treat it as no budget at all.
            Poll::Ready(None) => Poll::Ready(Err(io::Error::other(BudgetExhausted))),
            Poll::Pending => {
                let stall = self.stall;
                let timer = self
                    .stall_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                ready!(timer.as_mut().poll(cx));
                self.stall_timer = None;
                Poll::Ready(Err(io::Error::other(BudgetExhausted)))
            }
        }
    }
}

impl AsyncRead for BudgetedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let allowed = ready!(this.poll_allowance(cx, buf.remaining()))?;
        if allowed >= buf.remaining() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            this.spend(buf.filled().len() - before);
            return Poll::Ready(Ok(()));
        }
        // A shorter read into the front of the unfilled part (zeroed first: only messages past
        // the free part take this path).
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(allowed));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.advance(n);
        this.spend(n);
        Poll::Ready(Ok(()))
    }
}

impl BudgetedStream {
    fn spend(&mut self, n: usize) {
        let from_free = n.min(self.free_left);
        self.free_left -= from_free;
        self.credit = self.credit.saturating_sub(n - from_free);
    }
}

impl AsyncWrite for BudgetedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
