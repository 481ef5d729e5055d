//! Memory per idle connection: opens many WebSockets to a server running in another process,
//! has each make one `system.info` call (so the server has really set the connection up), keeps
//! them idle, and compares the server's resident memory before and after. Only the server
//! process is measured; the client's own sockets cost it nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::info;

use crate::client::{self, Ws};
use crate::{BenchError, procfs};

/// The shape of one idle-memory run.
#[derive(Debug, Clone, Copy)]
pub struct IdleSpec {
    pub connections: usize,
    /// Handshakes in progress at once (keeps the listen backlog from overflowing).
    pub concurrency: usize,
    /// How long the connections sit idle before the second reading.
    pub idle: Duration,
}

/// What one idle-memory run measured.
#[derive(Debug, Clone)]
pub struct IdleReport {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// The server's own count of open connections while all were open.
    pub server_reported_connections: u64,
}

impl IdleReport {
    pub fn kib_per_connection(&self) -> f64 {
        if self.connections == 0 {
            return 0.0;
        }
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.connections as f64
    }
}

/// Runs the idle test against the server at `addr` whose process id is `server_pid`.
pub async fn run(
    addr: SocketAddr,
    server_pid: u32,
    spec: IdleSpec,
) -> Result<IdleReport, BenchError> {
    // One control connection first: it warms whatever the server sets up lazily, and later
    // asks the server how many connections it sees.
    let mut control = client::connect(addr).await?;
    client::system_info(&mut control, addr, 1).await?;
    let rss_before_kib = procfs::rss_kib(server_pid)?;

    let (release_tx, release_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), BenchError>>(1024);
    let gate = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut holders = JoinSet::new();
    let mut ready_count = 0;
    for _ in 0..spec.connections {
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BenchError::Settings("the connection gate closed".into()))?;
        let ready = ready_tx.clone();
        let release = release_rx.clone();
        holders.spawn(async move {
            let ws = match open(addr).await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return;
                }
            };
            drop(permit);
            let _ = ready.send(Ok(())).await;
            hold(ws, release).await;
        });
        // Surface failures early rather than after every connection was attempted.
        while let Ok(result) = ready_rx.try_recv() {
            result?;
            ready_count += 1;
        }
    }
    drop(ready_tx);
    wait_ready(&mut ready_rx, spec.connections, ready_count).await?;
    info!(
        connections = spec.connections,
        "all connections open; idling"
    );
    tokio::time::sleep(spec.idle).await;
    let rss_after_kib = procfs::rss_kib(server_pid)?;
    let info = client::system_info(&mut control, addr, 2).await?;

    let _ = release_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    holders.abort_all();
    crate::load::close(control).await;
    Ok(IdleReport {
        connections: spec.connections,
        rss_before_kib,
        rss_after_kib,
        server_reported_connections: info.connections,
    })
}

/// Waits until `wanted` holders have reported ready (`seen` already have), failing on the first
/// holder that could not connect.
pub(crate) async fn wait_ready(
    ready_rx: &mut mpsc::Receiver<Result<(), BenchError>>,
    wanted: usize,
    mut seen: usize,
) -> Result<(), BenchError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while seen < wanted {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(result)) => {
                result?;
                seen += 1;
            }
            Ok(None) => {
                return Err(BenchError::Child(format!(
                    "only {seen} of {wanted} connections reported ready"
                )));
            }
            Err(_) => {
                return Err(BenchError::Timeout(format!(
                    "opening {wanted} connections ({seen} reported ready after 120 s)"
                )));
            }
        }
    }
    Ok(())
}

async fn open(addr: SocketAddr) -> Result<Ws, BenchError> {
    let mut ws = client::connect(addr).await?;
    client::system_info(&mut ws, addr, 1).await?;
    Ok(ws)
}

/// Keeps the connection open (answering pings by reading) until released.
pub(crate) async fn hold(ws: Ws, mut release: watch::Receiver<bool>) {
    let mut ws = ws;
    loop {
        tokio::select! {
            changed = release.changed() => {
                if changed.is_err() || *release.borrow() {
                    break;
                }
            }
            message = ws.next() => {
                if !matches!(message, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
    crate::load::close(ws).await;
}
