//! `serve`: plays the server side of transcripts to a client under test (client conformance).
//!
//! The client connects and performs the transcript's requests; `serve` checks each frame the
//! client sends against the transcript's `send` line (objects are closed: a member the line
//! does not have is a difference; `params` absent, `null`, `[]` and `{}` are the same) and answers
//! with the transcript's `expect` frames, with matchers replaced by their `$example` (or a
//! value of their `$type`), ids mapped to the ids the client chose and `seq` numbered per
//! connection. Every frame the client sends is also held to the spec.
//!
//! Which transcript a connection plays: the one named by its path (`ws://host/<name>`), else
//! the next one not played yet, in the order given. Further connections of a multi-connection
//! transcript join it in the order the transcript names them.
//!
//! `http` steps are not played: a transcript made of them only is reported as skipped, and in
//! a mixed one they are passed over (the fake gateway serves no HTTP routes).

mod client;
mod player;
mod types;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::report::{Failure, FailureKind, Report, TranscriptReport};
use crate::spec::Spec;
use crate::transcript::Transcript;

use player::Player;
pub use types::ServeOptions;
use types::{Accepted, Handshake};

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound server.
pub struct Server {
    listener: TcpListener,
    options: ServeOptions,
}

impl Server {
    pub async fn bind(options: ServeOptions) -> Result<Self, ServeError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.listen,
                    source,
                })?;
        Ok(Self { listener, options })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Plays every transcript once (in the order clients ask for them) and reports.
    pub async fn run(self, spec: Arc<Spec>, transcripts: Vec<Transcript>) -> Report {
        let target = self
            .local_addr()
            .map_or_else(|| self.options.listen.to_string(), |a| format!("ws://{a}/"));
        let (accepted_tx, mut accepted_rx) = mpsc::unbounded_channel();
        let acceptor = tokio::spawn(accept_loop(self.listener, accepted_tx));
        let mut reports: Vec<(usize, TranscriptReport)> = Vec::new();
        // A transcript of `http` steps only has nothing to play over a WebSocket.
        let (mut remaining, http_only): (Vec<usize>, Vec<usize>) =
            (0..transcripts.len()).partition(|&i| !transcripts[i].connections().is_empty());
        for i in http_only {
            let t = &transcripts[i];
            let reason = "holds HTTP steps only, and serve plays the WebSocket side of transcripts; test HTTP clients against a gateway";
            reports.push((
                i,
                TranscriptReport::skipped(
                    t.name(),
                    &t.path.display().to_string(),
                    reason.to_owned(),
                ),
            ));
        }
        while !remaining.is_empty() {
            let next = tokio::time::timeout(self.options.idle_timeout, accepted_rx.recv()).await;
            let Ok(Some(first)) = next else {
                for i in remaining.drain(..) {
                    let t = &transcripts[i];
                    let mut r = TranscriptReport::new(t.name(), &t.path.display().to_string());
                    r.failures.push(Failure::new(
                        0,
                        FailureKind::Connect,
                        format!(
                            "no client connected to play this transcript within {} s",
                            self.options.idle_timeout.as_secs()
                        ),
                    ));
                    reports.push((i, r.finish(Duration::ZERO)));
                }
                break;
            };
            let wanted = first.handshake.path.trim_start_matches('/').to_owned();
            let pick = if wanted.is_empty() {
                Some(0)
            } else {
                remaining
                    .iter()
                    .position(|&i| transcripts[i].name() == wanted)
            };
            let Some(pos) = pick else {
                tracing::warn!(path = %first.handshake.path, "a client asked for a transcript that is unknown or already played");
                let mut ws = first.ws;
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "no such transcript left to play".into(),
                    }))
                    .await;
                continue;
            };
            let index = remaining.remove(pos);
            let t = &transcripts[index];
            tracing::info!(transcript = t.name(), "playing");
            let report = Player::new(&spec, t, &self.options)
                .play(first, &mut accepted_rx)
                .await;
            reports.push((index, report));
        }
        acceptor.abort();
        reports.sort_by_key(|(i, _)| *i);
        Report::new(
            "serve",
            &target,
            &spec.version,
            reports.into_iter().map(|(_, r)| r).collect(),
        )
    }
}

// tungstenite's handshake callback returns its (large) error response type.
#[allow(clippy::result_large_err)]
async fn accept_loop(listener: TcpListener, out: mpsc::UnboundedSender<Accepted>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let out = out.clone();
        tokio::spawn(async move {
            let mut handshake = Handshake::default();
            let callback = |request: &Request, mut response: Response| {
                handshake.path = request.uri().path().to_owned();
                handshake.headers = request
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| {
                        v.to_str()
                            .ok()
                            .map(|v| (k.as_str().to_owned(), v.to_owned()))
                    })
                    .collect();
                handshake.subprotocols = request
                    .headers()
                    .get_all("sec-websocket-protocol")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                if handshake.subprotocols.iter().any(|p| p == "flynn.v1") {
                    response.headers_mut().insert(
                        "sec-websocket-protocol",
                        HeaderValue::from_static("flynn.v1"),
                    );
                }
                Ok(response)
            };
            match tokio_tungstenite::accept_hdr_async(stream, callback).await {
                Ok(ws) => {
                    let _ = out.send(Accepted { ws, handshake });
                }
                Err(e) => tracing::warn!(error = %e, "a client's WebSocket handshake failed"),
            }
        });
    }
}
