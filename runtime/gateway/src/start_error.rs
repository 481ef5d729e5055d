//! Why the daemon could not start ([`crate::start`], [`crate::Gateway::new`]). Its own module
//! (re-exported as `flynn_gateway::StartError`) so that `gateway` does not name the crate root,
//! which would put everything reaching `Gateway` into one import cycle with `lib.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::tls::TlsError;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store at {path}: {source}")]
    Store {
        path: PathBuf,
        source: flynn_store::StoreError,
    },
    #[error("the models configuration is not usable: {0}")]
    Models(flynn_models::ProviderError),
    #[error("the ops configuration is not usable: {0}")]
    Ops(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source} (is another gateway running? pick another --port)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
