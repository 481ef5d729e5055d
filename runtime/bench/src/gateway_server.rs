//! The real gateway, started in this process with its default configuration except: loopback
//! only, a free port and a data directory of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use flynn_gateway::{Config, Running};

use crate::BenchError;

/// The configuration the bench runs the gateway with.
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.server.port = 0;
    config.storage.data_dir = Some(data_dir.to_path_buf());
    config
}

/// Starts the gateway on 127.0.0.1 and a free port, storing in `data_dir`, with
/// `server.max_connections` and an OpenAI-compatible model server set when given.
pub async fn start(
    data_dir: &Path,
    max_connections: Option<usize>,
    model_url: Option<&str>,
) -> Result<Running, BenchError> {
    let mut config = config(data_dir);
    if let Some(max) = max_connections {
        config.server.max_connections = max;
    }
    if let Some(url) = model_url {
        // Through serde, as a config file would set it.
        let models = serde_json::json!({
            "default_tier": "default",
            "tiers": { "default": { "kind": "openai", "model": "bench-sse", "base_url": url } },
        });
        config.models = serde_json::from_value(models).map_err(|e| BenchError::Reply {
            addr: std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            detail: format!("the bench's model configuration is invalid: {e}"),
        })?;
    }
    Ok(flynn_gateway::start(config, None).await?)
}

/// The database file the gateway opens in `data_dir`.
pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("flynn.sqlite")
}

/// How many WebSocket connections the bench's gateway accepts.
pub fn max_connections() -> usize {
    Config::default().server.max_connections
}
