//! The large idle scenario: as many idle WebSockets as one process may hold here (the
//! descriptor hard limit, 20,000 on these machines, less a margin), opened from several loopback
//! source addresses (127.0.0.2, 127.0.0.3, ...: one address has only ~28,000 ephemeral ports
//! towards one server port, and spreading them keeps every address far from that). It reports
//! the server's memory per connection and the `system.info` latency of one more connection
//! while all of them are held. Bounded in time; everything is closed at the end.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::{self, REPLY_TIMEOUT, Ws};
use crate::{BenchError, procfs};

/// Connections per loopback source address.
pub const PER_SOURCE_ADDRESS: usize = 5_000;

/// The shape of one large idle run.
#[derive(Debug, Clone, Copy)]
pub struct LargeIdleSpec {
    pub connections: usize,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// How long the connections sit idle before memory is read.
    pub idle: Duration,
    /// `system.info` calls (one at a time) timed while the connections are held.
    pub probes: usize,
}

/// What one large idle run measured.
#[derive(Debug, Clone)]
pub struct LargeIdleReport {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub server_reported_connections: u64,
    /// Server CPU while the connections sat idle (pings only), per second.
    pub idle_cpu_share: f64,
    /// Sorted `system.info` round trips while they were held, ns.
    probes_ns: Vec<u64>,
    /// How long opening them took.
    pub open_time: Duration,
}

impl LargeIdleReport {
    pub fn kib_per_connection(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64
            / self.connections.max(1) as f64
    }

    pub fn probe(&self, p: f64) -> Duration {
        if self.probes_ns.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * (self.probes_ns.len() - 1) as f64).round() as usize;
        Duration::from_nanos(self.probes_ns[rank.min(self.probes_ns.len() - 1)])
    }
}

/// Raises this process's soft descriptor limit to the hard limit; returns the limit.
pub fn raise_own_descriptor_limit() -> Result<u64, BenchError> {
    rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| BenchError::io("cannot raise the open-descriptor limit", e))
}

/// The source address of connection `index`: 127.0.0.2 and up.
fn source_address(index: usize) -> Result<IpAddr, BenchError> {
    let n = 2 + index / PER_SOURCE_ADDRESS;
    let last = u8::try_from(n)
        .map_err(|_| BenchError::Settings("too many connections for 127.0.0.x sources".into()))?;
    Ok(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// Connects from `source` (bind before connect) and makes one `system.info` call.
async fn open_from(addr: SocketAddr, source: IpAddr) -> Result<Ws, BenchError> {
    let socket = TcpSocket::new_v4().map_err(|e| BenchError::io("cannot create a socket", e))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| BenchError::io(format!("cannot bind {source}"), e))?;
    let stream = tokio::time::timeout(REPLY_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| BenchError::Timeout(format!("connecting to {addr} from {source}")))?
        .map_err(|e| BenchError::io(format!("cannot connect to {addr} from {source}"), e))?;
    let _ = stream.set_nodelay(true);
    // Small client buffers: 19,000 of them live in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        REPLY_TIMEOUT,
        tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}/"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
            Some(config),
        ),
    )
    .await
    .map_err(|_| BenchError::Timeout(format!("the handshake with {addr}")))?
    .map_err(|e| BenchError::ws(addr, e))?;
    let mut ws = ws;
    client::system_info(&mut ws, addr, 1).await?;
    Ok(ws)
}

/// Runs the scenario against the server at `addr` (process `server_pid`).
pub async fn run(
    addr: SocketAddr,
    server_pid: u32,
    spec: LargeIdleSpec,
) -> Result<LargeIdleReport, BenchError> {
    let mut control = client::connect(addr).await?;
    client::system_info(&mut control, addr, 1).await?;
    let rss_before_kib = procfs::rss_kib(server_pid)?;

    let (release_tx, release_rx) = watch::channel(false);
    let opening = Instant::now();
    let mut holders = open_all(addr, &spec, release_rx).await?;
    let open_time = opening.elapsed();
    tracing::info!(
        connections = spec.connections,
        ?open_time,
        "all connections open; idling"
    );

    let idle_cpu_share = idle_cpu_share(server_pid, spec.idle).await?;
    let rss_after_kib = procfs::rss_kib(server_pid)?;
    let (probes_ns, info) = probe(&mut control, addr, spec.probes).await?;

    let _ = release_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    holders.abort_all();
    crate::load::close(control).await;
    Ok(LargeIdleReport {
        connections: spec.connections,
        rss_before_kib,
        rss_after_kib,
        server_reported_connections: info.map_or(0, |i| i.connections),
        idle_cpu_share,
        probes_ns,
        open_time,
    })
}

/// Opens `spec.connections` connections, at most `spec.concurrency` handshakes at a time, each
/// from its own source address; each is held open until `release` turns true. Returns once all
/// are open (or the first fails).
async fn open_all(
    addr: SocketAddr,
    spec: &LargeIdleSpec,
    release: watch::Receiver<bool>,
) -> Result<JoinSet<()>, BenchError> {
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), BenchError>>(1024);
    let gate = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut holders = JoinSet::new();
    let mut ready = 0;
    for index in 0..spec.connections {
        let source = source_address(index)?;
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BenchError::Settings("the connection gate closed".into()))?;
        let ready_tx = ready_tx.clone();
        let release = release.clone();
        holders.spawn(async move {
            let ws = match open_from(addr, source).await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready_tx.send(Err(e)).await;
                    return;
                }
            };
            drop(permit);
            let _ = ready_tx.send(Ok(())).await;
            crate::idle::hold(ws, release).await;
        });
        while let Ok(result) = ready_rx.try_recv() {
            result?;
            ready += 1;
        }
    }
    drop(ready_tx);
    crate::idle::wait_ready(&mut ready_rx, spec.connections, ready).await?;
    Ok(holders)
}

/// The server's CPU time over `idle` as a share of one core.
async fn idle_cpu_share(server_pid: u32, idle: Duration) -> Result<f64, BenchError> {
    let cpu_before = procfs::cpu_time(server_pid)?;
    let idle_started = Instant::now();
    tokio::time::sleep(idle).await;
    Ok(procfs::cpu_time(server_pid)?
        .saturating_sub(cpu_before)
        .as_secs_f64()
        / idle_started.elapsed().as_secs_f64().max(f64::EPSILON))
}

/// `probes` (at least one) `system.info` round trips on `control`: their times in ns, sorted,
/// and the last answer.
async fn probe(
    control: &mut Ws,
    addr: SocketAddr,
    probes: usize,
) -> Result<(Vec<u64>, Option<client::Info>), BenchError> {
    let mut probes_ns = Vec::with_capacity(probes);
    let mut info = None;
    for i in 0..probes.max(1) {
        let sent = Instant::now();
        info = Some(client::system_info(control, addr, 2 + i as u64).await?);
        probes_ns.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    probes_ns.sort_unstable();
    Ok((probes_ns, info))
}

/// Prints the report with the targets and the extrapolation to 100,000 connections.
pub fn print(report: &LargeIdleReport, limit: u64) {
    let per = report.kib_per_connection();
    let p99 = report.probe(99.0);
    println!();
    println!(
        "large idle: {} connections from {} loopback source addresses (descriptor limit {limit})",
        report.connections,
        report.connections.div_ceil(PER_SOURCE_ADDRESS)
    );
    println!(
        "server VmRSS {} KiB before, {} KiB after: {per:.2} KiB per connection (target <= 6: {}); server counted {} connections; opening took {:.1} s",
        report.rss_before_kib,
        report.rss_after_kib,
        if per <= 6.0 { "met" } else { "MISSED" },
        report.server_reported_connections,
        report.open_time.as_secs_f64()
    );
    println!(
        "system.info while they are held ({} calls, one at a time): p50 {:.0} us, p99 {:.0} us (target p99 <= 1000 us: {}); server CPU while idle: {:.1} %",
        report.probes_ns.len(),
        report.probe(50.0).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        if p99 <= Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        },
        report.idle_cpu_share * 100.0
    );
    println!(
        "extrapolated to 100,000 connections: {:.0} MiB of connection memory",
        per * 100_000.0 / 1024.0
    );
}
