//! The one error type of the bench: every failure says what was being done and what to check.

use std::net::SocketAddr;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("WebSocket to {addr} failed: {source} (is the server still running?)")]
    WebSocket {
        addr: SocketAddr,
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("the gateway did not start: {0}")]
    Gateway(#[from] flynn_gateway::StartError),
    #[error("the server process failed: {0}")]
    Child(String),
    #[error("unexpected reply from {addr}: {detail}")]
    Reply { addr: SocketAddr, detail: String },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("cannot read /proc for process {pid}: {detail}")]
    Proc { pid: u32, detail: String },
    #[error("invalid benchmark settings: {0}")]
    Settings(String),
}

impl BenchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn ws(addr: SocketAddr, source: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket {
            addr,
            source: Box::new(source),
        }
    }
}
