//! One WebSocket connection: reads frames, runs their handlers concurrently inside the
//! connection's task, writes replies and events (each event numbered with `seq`), keeps the
//! connection alive with pings, and closes it on request, on shutdown (1001) or when it cannot
//! keep up with its events (1008).
//!
//! The transport knows the rest of the gateway only through [`ConnectionService`] (run one
//! request for a connection; hear that a connection is gone) and the connection registry
//! ([`Connections`], in `crate::connections`, which sees a connection only as a
//! `crate::connections::Live`). One job per module:
//!
//! - [`state`]: per-connection state shared with handlers and runs, and its event queue.
//! - [`service`]: the interface to the rest of the gateway.
//! - `serve`: the read/dispatch/write loop, a small state machine.
//! - `dispatch`: one incoming frame (a request, a batch, a control frame).
//! - `ping`: the ping timer the loop waits on.
//! - `doorbell`: the events' notifier the loop waits on.
//! - `writer`: feeding frames, flushing once per wakeup, writes that have to wait.
//! - `close`: closing handshakes, failure codes, refusing an unauthenticated connection.

mod close;
mod dispatch;
mod doorbell;
mod ping;
mod serve;
pub mod service;
pub mod state;
#[cfg(test)]
mod tests;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::auth::Identity;
use crate::config::ServerConfig;

pub use crate::connections::{ConnectionSlot, Connections, Reserve};
pub use close::{Socket, refuse};
pub use service::ConnectionService;
pub use state::{ConnectionState, EventQueue, Outbound};

/// What a connection reads from the gateway once, at its start: its limits, and the token
/// whose cancellation begins its shutdown (finish in-flight requests, then close with 1001).
pub struct Settings {
    /// Events that may wait for the writer (`server.outbound_buffer_frames`).
    pub outbound_buffer_frames: usize,
    /// `server.ping_interval_ms`.
    pub ping_interval: Duration,
    /// `server.write_stall_timeout_ms`.
    pub write_stall: Duration,
    /// `server.close_delivery_timeout_ms`.
    pub close_delivery: Duration,
    pub shutdown: CancellationToken,
}

impl Settings {
    pub fn new(server: &ServerConfig, shutdown: CancellationToken) -> Self {
        Self {
            outbound_buffer_frames: server.outbound_buffer_frames,
            ping_interval: Duration::from_millis(server.ping_interval_ms),
            write_stall: Duration::from_millis(server.write_stall_timeout_ms),
            close_delivery: Duration::from_millis(server.close_delivery_timeout_ms),
            shutdown,
        }
    }
}

/// Serves one authenticated connection until it closes: registers it in the registry its slot
/// was reserved from, runs the loop, then unregisters it and tells the service.
pub async fn run<S: ConnectionService>(
    service: Arc<S>,
    ws: Socket,
    peer: SocketAddr,
    identity: Identity,
    slot: ConnectionSlot,
    settings: Settings,
) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let state = Arc::new(ConnectionState::new(
        id,
        peer,
        identity,
        settings.outbound_buffer_frames,
    ));
    slot.registry().register(state.clone());
    debug!(
        connection = %state.id,
        %peer,
        principal = state.identity.principal().unwrap_or("-"),
        "connected"
    );

    let ended = serve::serve(
        &*service,
        ws,
        &state,
        settings.ping_interval,
        writer::WriteLimits {
            stall: settings.write_stall,
            close_delivery: settings.close_delivery,
        },
        settings.shutdown,
    )
    .await;
    state.events.close();
    slot.registry().unregister(&state.id);
    service.on_disconnect(&state).await;
    match ended {
        writer::Ended::Closed(code) => {
            debug!(connection = %state.id, code, "closed by the gateway")
        }
        other => debug!(connection = %state.id, ?other, "disconnected"),
    }
}
