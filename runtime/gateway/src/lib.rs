//! The Flynn gateway daemon: WebSocket JSON-RPC and HTTP on one port.
//!
//! - [`config`]: the TOML configuration and its JSON Schema.
//! - [`server`]: the listener (hyper), WebSocket upgrades and HTTP routing.
//! - [`auth`]: tokens, Tailscale identity, origin checks, failure rate limits.
//! - [`connection`]: one WebSocket connection's read/dispatch/write loop.
//! - [`handlers`]: the protocol's methods, one module per spec tag (`handlers/<tag>.rs` implements
//!   the generated `flynn_protocol::<Tag>Methods` for `Gateway`).
//! - [`gateway`]: shared state; [`snapshot`]: the configuration and what is built from it (model
//!   tiers, tools, ops views, the agent's settings), one `ArcSwap`ped snapshot;
//!   [`connections`]: the live connections (a narrow view of them); [`node_registry`]: nodes.
//! - The agent (session lanes, turns, approvals, kept runs, session settings, context budget)
//!   is the crate `flynn_agent`: the gateway gives it the store, the settings snapshot and its
//!   [`agent_hooks`] (metrics, Web Push when a turn ends unwatched), and holds its `Lanes`.
//!   [`inbox`] turns HTTP messages (webhooks, chat channels) into its turns.
//!
//! The modules import each other without cycles (`cargo test -p flynn-archcheck`): the shared
//! state reaches neither the connection loop nor the handlers, which both reach it.

pub mod admission;
pub mod agent_hooks;
pub mod allocator;
pub mod auth;
pub mod channels;
pub mod config;
pub mod connection;
pub mod connections;
pub mod dashboard;
pub mod env_secrets;
pub mod gateway;
pub mod handlers;
pub mod hosts;
pub mod http_auth;
pub mod http_routes;
pub mod inbound;
pub mod inbox;
pub mod logging;
pub mod metrics;
pub mod node_registry;
pub mod outbound;
pub mod push;
pub mod server;
pub mod session_id;
pub mod snapshot;
mod start_error;
pub mod tls;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;
pub use gateway::Gateway;
pub use start_error::StartError;

/// A running gateway.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    server: JoinHandle<()>,
}

impl Running {
    /// Graceful shutdown: stop accepting, close connections with 1001, cancel runs, flush the
    /// store.
    pub async fn shutdown(self) {
        // Runs first: their requesters get a terminal reply (code 4) while connections are
        // still open, then connections finish in-flight requests and close with 1001.
        self.gateway
            .lanes
            .cancel_all("the gateway is shutting down")
            .await;
        self.gateway.lanes.wait_idle(Duration::from_secs(3)).await;
        self.gateway.shutdown.cancel();
        let _ = self.server.await;
        // Connections close themselves on the cancelled token; give them a bounded moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while self.gateway.connections.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Err(e) = self.gateway.store.flush().await {
            tracing::warn!(error = %e, "store flush at shutdown failed");
        }
    }

    /// Waits until the server stops (after `gateway.shutdown` is cancelled).
    pub async fn wait(self) {
        self.shutdown_when_cancelled().await;
    }

    async fn shutdown_when_cancelled(self) {
        tokio::select! {
            _ = self.gateway.shutdown.cancelled() => {}
            _ = self.gateway.shutdown_requested.notified() => {}
        }
        self.shutdown().await;
    }
}

/// Opens the store, binds the listener and starts serving.
pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Running, StartError> {
    config.validate()?;
    config.check_exposure(config.server.bind)?;
    let data_dir = config.data_dir();
    let db_path = data_dir.join("flynn.sqlite");
    let store = flynn_store::Store::open_async(&db_path)
        .await
        .map_err(|source| StartError::Store {
            path: db_path.clone(),
            source,
        })?;
    let addr = SocketAddr::new(config.server.bind, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let auth = if config.server.token.is_some() {
        "token required"
    } else {
        "no token (loopback only)"
    };
    let gateway = Gateway::new(config, config_path, store)?;
    let shutdown = gateway.shutdown.clone();
    gateway
        .ops()
        .spawn_sampler(async move { shutdown.cancelled_owned().await });
    let scheme = if gateway.tls.enabled() { "wss" } else { "ws" };
    tracing::info!(
        "flynn-gateway {} listening on {scheme}://{addr}/ (HTTP /health on the same port), {auth}, data in {}, model: embedded default",
        env!("CARGO_PKG_VERSION"),
        db_path.display(),
    );
    // Connections see shutdown when woken (`Connections::wake_all`), not by each waiting on
    // the token.
    let (shutdown, connections) = (gateway.shutdown.clone(), gateway.connections.clone());
    tokio::spawn(async move {
        shutdown.cancelled_owned().await;
        connections.wake_all();
    });
    let server = tokio::spawn(server::serve(gateway.clone(), listener));
    Ok(Running {
        addr,
        gateway,
        server,
    })
}
