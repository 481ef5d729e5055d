//! The test gateway: a real gateway (`flynn_gateway::start`) in the test's process, on a free
//! 127.0.0.1 port, with its own temp directory holding its configuration file and its SQLite
//! data, and the clients a test talks to it with:
//!
//! - [`TestGateway::client`]: the raw WebSocket client [`Ws`], for tests of the wire itself
//!   and of calls no typed client can make (malformed params, unknown methods, batches).
//! - [`TestGateway::typed_client`]: the generated typed client ([`TestClient`]), so a test
//!   calls `client.sessions_get(types::SessionsGetParams { .. })` and every reply is decoded
//!   into the spec's types; [`TestClient::raw`] sends an untyped call on the same connection.
//! - [`TestGateway::in_process`]: the typed client over a request run by the gateway's `ConnectionService` in
//!   process, no socket, for handler tests where the transport is not the point.
//!
//! The dependency cycle: flynn-gateway dev-depends on this crate, which (with this feature)
//! depends on flynn-gateway. Cargo allows it, and it works for the gateway's integration tests
//! (`tests/it`), which link one flynn-gateway. It does not for the gateway's unit tests
//! (`src/**/tests.rs`): they are built from a second copy of the crate, whose types are not the
//! ones this module uses, so unit tests cannot use it.

mod client;
mod dispatch;
mod ws;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use client::{TestClient, rpc_error};
pub use dispatch::{Dispatcher, InProcessClient};
pub use ws::{FRAME_TIMEOUT, Ws};

/// A gateway running in this process.
pub struct TestGateway {
    pub running: Option<flynn_gateway::Running>,
    pub addr: std::net::SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl TestGateway {
    /// Starts a gateway with `extra_toml` appended to a config that puts data in a temp dir.
    pub async fn start(extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra_toml).await
    }

    /// Starts a gateway on `dir` (a restart on the data a stopped gateway left there).
    pub async fn start_in(dir: tempfile::TempDir, extra_toml: &str) -> Self {
        let config_path = config_path(dir.path());
        write_config_file(&config_path, &dir.path().join("data"), extra_toml);
        let config = flynn_gateway::Config::load(&config_path).expect("valid test config");
        let running = flynn_gateway::start(config, Some(config_path.clone()))
            .await
            .expect("gateway starts");
        Self {
            addr: running.addr,
            running: Some(running),
            dir,
            config_path,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The running gateway's shared state (its store, lanes, configuration snapshot).
    pub fn gateway(&self) -> &Arc<flynn_gateway::Gateway> {
        &self.running.as_ref().expect("gateway running").gateway
    }

    /// A raw WebSocket client on a new connection.
    pub async fn client(&self) -> Ws {
        Ws::connect(&self.url(), &[])
            .await
            .expect("websocket connects")
    }

    /// The generated typed client on a new connection (no token).
    pub async fn typed_client(&self) -> TestClient {
        TestClient::connect(&self.url(), Default::default())
            .await
            .expect("the generated client connects")
    }

    /// The generated typed client on a socketless connection with every scope (see
    /// [`Dispatcher`]).
    pub fn in_process(&self) -> InProcessClient {
        self.in_process_as(flynn_gateway::auth::Identity::Open)
    }

    /// The typed client on a socketless connection authenticated as `identity`.
    pub fn in_process_as(&self, identity: flynn_gateway::auth::Identity) -> InProcessClient {
        InProcessClient::new(Dispatcher::new(self.gateway().clone(), identity))
    }

    /// Graceful shutdown, keeping the directory for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }

    /// Rewrites the configuration file (for `config.reload`).
    pub fn write_config(&self, extra_toml: &str) {
        write_config_file(&self.config_path, &self.data_dir(), extra_toml);
    }
}

/// The configuration file of a test gateway whose directory is `dir`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("flynn.toml")
}

/// Data under `data`, a free port, then `extra_toml`.
fn write_config_file(path: &Path, data: &Path, extra_toml: &str) {
    let text = format!(
        "[storage]\ndata_dir = {data:?}\n\n[server]\nport = 0\n{extra_toml}\n",
        data = data.display().to_string()
    );
    std::fs::write(path, text).expect("write config");
}
