//! What the accept loop ([`super`]) hands the player ([`super::player`]) and the options both
//! read: their own module so that neither side reaches into the other.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The token the client must present (header or `flynn.bearer.` subprotocol).
    pub token: Option<String>,
    /// How long a frame from the client may take.
    pub timeout: Duration,
    /// How long to wait for a client to connect for the next transcript.
    pub idle_timeout: Duration,
    /// How long to keep listening after a transcript's last step for frames nobody expects.
    pub linger: Duration,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            token: None,
            timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            linger: Duration::from_millis(200),
        }
    }
}

/// What the client's handshake carried.
#[derive(Debug, Clone, Default)]
pub(super) struct Handshake {
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) subprotocols: Vec<String>,
}

/// A client connection whose WebSocket handshake completed, waiting for the player.
pub(super) struct Accepted {
    pub(super) ws: WebSocketStream<TcpStream>,
    pub(super) handshake: Handshake,
}
