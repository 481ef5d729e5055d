//! The benchmark suite: starts each server in its own (pinned) process, runs the load shapes and
//! the idle-memory test against each, and prints the figures side by side with the targets.

use std::net::SocketAddr;
use std::time::Duration;

use crate::child::{ServerKind, ServerProcess};
use crate::idle::{self, IdleReport, IdleSpec};
use crate::load::{self, LoadReport, LoadSpec, Stop};
use crate::pin::Pinning;
use crate::raw_server::RawOptions;
use crate::{BenchError, client, gateway_server, procfs};

/// Throughput target: the gateway reaches at least this fraction of the raw server's rate.
pub const THROUGHPUT_TARGET: f64 = 0.85;
/// CPU target (issue 17): the raw server's CPU per request is at least this fraction of the
/// gateway's, with one request in flight per connection...
pub const CPU_TARGET_ONE_IN_FLIGHT: f64 = 0.95;
/// ...and with more in flight (pipelined), where per-request work weighs more than per-wakeup work.
pub const CPU_TARGET_PIPELINED: f64 = 0.9;

/// The CPU target (raw/gateway CPU per request) for a load shape.
pub fn cpu_target(in_flight: usize) -> f64 {
    if in_flight <= 1 {
        CPU_TARGET_ONE_IN_FLIGHT
    } else {
        CPU_TARGET_PIPELINED
    }
}
/// Memory target: at most this many KiB of server memory per idle connection.
pub const MEMORY_TARGET_KIB: f64 = 8.0;

/// Everything a run can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub in_flight: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub idle_connections: usize,
    pub idle: Duration,
    pub concurrency: usize,
    pub servers: Vec<ServerKind>,
    pub pinning: Option<Pinning>,
    /// Cores the machine offers (counted before this process was pinned).
    pub cores: usize,
    /// Load runs per server and shape, alternating servers; the median counts.
    pub rounds: usize,
    /// Measure a server started elsewhere (address, pid) instead of spawning one; it is
    /// labelled with the single kind in `servers`.
    pub attach: Option<(SocketAddr, u32)>,
    /// How the raw server is set up (see [`crate::raw_server`]).
    pub raw: RawOptions,
}

/// A server under test: a child process of ours, or one started by hand (e.g. the release
/// `flynn-gateway` binary, or a server under valgrind).
enum Target {
    Child(Box<ServerProcess>),
    Attached {
        kind: ServerKind,
        addr: SocketAddr,
        pid: u32,
    },
}

impl Target {
    async fn start(settings: &Settings, kind: ServerKind) -> Result<Self, BenchError> {
        match settings.attach {
            Some((addr, pid)) => Ok(Self::Attached { kind, addr, pid }),
            None => Ok(Self::Child(Box::new(
                ServerProcess::spawn(
                    kind,
                    settings.pinning.map(|p| p.server_core),
                    settings.raw,
                    &Default::default(),
                )
                .await?,
            ))),
        }
    }

    fn kind(&self) -> ServerKind {
        match self {
            Self::Child(c) => c.kind,
            Self::Attached { kind, .. } => *kind,
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Self::Child(c) => c.addr,
            Self::Attached { addr, .. } => *addr,
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Self::Child(c) => c.pid,
            Self::Attached { pid, .. } => *pid,
        }
    }

    async fn stop(self) {
        if let Self::Child(child) = self
            && let Err(e) = child.stop().await
        {
            tracing::warn!(error = %e, "server shutdown");
        }
    }
}

/// One load run against one server.
pub struct ThroughputRow {
    pub kind: ServerKind,
    pub report: LoadReport,
    /// CPU the server used inside the measured window.
    pub server_cpu: Duration,
    /// CPU the load generator used inside the measured window.
    pub load_cpu: Duration,
    /// CPU everything else on the machine used meanwhile (noise: other builds, tests).
    pub other_cpu: Duration,
}

/// Prints the machine and pinning the figures were taken on.
pub fn print_machine(settings: &Settings) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = settings.cores;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "machine: {cores} cores available ({model}), Linux {}",
        kernel.trim()
    );
    match settings.pinning {
        Some(p) => println!(
            "pinning: each server process under `taskset -c {}`, the load generator on core {} (Cpus_allowed_list: {})",
            p.server_core,
            p.load_core,
            procfs::allowed_cpus(std::process::id()).unwrap_or_else(|e| e.to_string())
        ),
        None => println!("pinning: none (servers and load generator share all cores)"),
    }
    println!(
        "raw server: reply {} ({}), write_buffer_size {} bytes, read_buffer_size {} bytes",
        settings.raw.reply.name(),
        match settings.raw.reply {
            crate::raw_server::RawReply::Gateway => "the same members as the gateway's reply",
            crate::raw_server::RawReply::Minimal =>
                "the protocol document's version, uptime, connections only",
        },
        settings.raw.write_buffer,
        settings.raw.read_buffer
    );
}

/// Throughput and latency of `system.info` for every load shape against every server.
pub async fn throughput(settings: &Settings) -> Result<Vec<ThroughputRow>, BenchError> {
    let mut servers = Vec::new();
    for kind in &settings.servers {
        let server = Target::start(settings, *kind).await?;
        check_answers(server.addr()).await?;
        servers.push(server);
    }
    let own_pid = std::process::id();
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    'shapes: for &in_flight in &settings.in_flight {
        for server in (0..settings.rounds.max(1)).flat_map(|_| &servers) {
            let spec = LoadSpec {
                connections: settings.connections,
                in_flight,
                warmup: settings.warmup,
                stop: Stop::After(settings.duration),
            };
            tracing::info!(
                server = server.kind().name(),
                connections = spec.connections,
                in_flight,
                "load run"
            );
            match load::run_watched(server.addr(), spec, &[server.pid(), own_pid]).await {
                Ok(report) => {
                    let server_cpu = report.cpu.first().copied().unwrap_or_default();
                    let load_cpu = report.cpu.get(1).copied().unwrap_or_default();
                    let machine = report.cpu.get(2).copied().unwrap_or_default();
                    let other_cpu = machine.saturating_sub(server_cpu + load_cpu);
                    rows.push(ThroughputRow {
                        kind: server.kind(),
                        report,
                        server_cpu,
                        load_cpu,
                        other_cpu,
                    });
                }
                Err(e) => {
                    outcome = Err(e);
                    break 'shapes;
                }
            }
        }
    }
    for server in servers {
        server.stop().await;
    }
    outcome.map(|()| rows)
}

/// Memory per idle connection, each server in a fresh process.
pub async fn memory(settings: &Settings) -> Result<Vec<(ServerKind, IdleReport)>, BenchError> {
    if settings.servers.contains(&ServerKind::Gateway)
        && settings.idle_connections + 1 > gateway_server::max_connections()
    {
        return Err(BenchError::Settings(format!(
            "{} idle connections plus the control connection exceed the gateway's server.max_connections ({})",
            settings.idle_connections,
            gateway_server::max_connections()
        )));
    }
    let spec = IdleSpec {
        connections: settings.idle_connections,
        concurrency: settings.concurrency,
        idle: settings.idle,
    };
    let mut reports = Vec::new();
    for kind in &settings.servers {
        let server = Target::start(settings, *kind).await?;
        tracing::info!(
            server = kind.name(),
            connections = spec.connections,
            "idle memory run"
        );
        let result = idle::run(server.addr(), server.pid(), spec).await;
        server.stop().await;
        reports.push((*kind, result?));
    }
    Ok(reports)
}

/// One fully checked `system.info` call, so a broken server fails loudly before any figure.
async fn check_answers(addr: SocketAddr) -> Result<(), BenchError> {
    let mut ws = client::connect(addr).await?;
    let info = client::system_info(&mut ws, addr, 1).await?;
    if info.connections < 1 || info.version.is_empty() {
        return Err(BenchError::Reply {
            addr,
            detail: format!("implausible system.info result {info:?}"),
        });
    }
    load::close(ws).await;
    Ok(())
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

impl ThroughputRow {
    /// Server CPU per reply, in microseconds.
    pub fn server_us_per_request(&self) -> f64 {
        if self.report.requests == 0 {
            return 0.0;
        }
        self.server_cpu.as_secs_f64() * 1e6 / self.report.requests as f64
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Prints the throughput table (one line per run) and, per shape, the medians and the
/// gateway/raw ratio.
pub fn print_throughput(settings: &Settings, rows: &[ThroughputRow]) {
    println!();
    println!(
        "system.info throughput: {} connections, {:?} measured after {:?} warm-up, {} round(s)",
        settings.connections,
        settings.duration,
        settings.warmup,
        settings.rounds.max(1)
    );
    println!(
        "{:>9}  {:<8} {:>12} {:>8} {:>8} {:>10} {:>13} {:>9} {:>10}",
        "in flight",
        "server",
        "requests/s",
        "p50 us",
        "p99 us",
        "server CPU",
        "server us/req",
        "load CPU",
        "other CPU"
    );
    for &in_flight in &settings.in_flight {
        let shape: Vec<&ThroughputRow> = rows
            .iter()
            .filter(|r| r.report.spec.in_flight == in_flight)
            .collect();
        for row in &shape {
            let secs = row.report.elapsed.as_secs_f64().max(f64::EPSILON);
            println!(
                "{:>9}  {:<8} {:>12.0} {:>8} {:>8} {:>9.0}% {:>13.2} {:>8.0}% {:>9.0}%{}",
                in_flight,
                row.kind.name(),
                row.report.per_second(),
                micros(row.report.percentile(50.0)),
                micros(row.report.percentile(99.0)),
                row.server_cpu.as_secs_f64() / secs * 100.0,
                row.server_us_per_request(),
                row.load_cpu.as_secs_f64() / secs * 100.0,
                row.other_cpu.as_secs_f64() / secs * 100.0,
                if row.report.errors > 0 {
                    format!("  ({} error replies)", row.report.errors)
                } else {
                    String::new()
                }
            );
        }
        let of = |kind: ServerKind, f: fn(&ThroughputRow) -> f64| {
            median(
                shape
                    .iter()
                    .filter(|r| r.kind == kind)
                    .map(|r| f(r))
                    .collect(),
            )
        };
        let rate = |r: &ThroughputRow| r.report.per_second();
        let cpu = |r: &ThroughputRow| r.server_us_per_request();
        if let (Some(raw), Some(gateway), Some(raw_cpu), Some(gateway_cpu)) = (
            of(ServerKind::Raw, rate),
            of(ServerKind::Gateway, rate),
            of(ServerKind::Raw, cpu),
            of(ServerKind::Gateway, cpu),
        ) && raw > 0.0
            && gateway_cpu > 0.0
        {
            let ratio = gateway / raw;
            let cpu_ratio = raw_cpu / gateway_cpu;
            let cpu_target = cpu_target(in_flight);
            println!(
                "{:>9}  median requests/s: raw {raw:.0}, gateway {gateway:.0}; gateway/raw = {ratio:.2}x \
                 (target >= {THROUGHPUT_TARGET}x: {}); server CPU per request: raw {raw_cpu:.2} us, \
                 gateway {gateway_cpu:.2} us (raw/gateway = {cpu_ratio:.2}x, target >= {cpu_target}x: {})",
                "",
                verdict(ratio >= THROUGHPUT_TARGET),
                verdict(cpu_ratio >= cpu_target),
            );
        }
    }
}

/// Prints the idle-memory table.
pub fn print_memory(settings: &Settings, reports: &[(ServerKind, IdleReport)]) {
    println!();
    println!(
        "memory per idle connection: {} connections per server, idle {:?}, server VmRSS",
        settings.idle_connections, settings.idle
    );
    println!(
        "{:<8} {:>14} {:>14} {:>12} {:>20}",
        "server", "RSS before KiB", "RSS after KiB", "KiB/conn", "server counted conns"
    );
    for (kind, report) in reports {
        let per = report.kib_per_connection();
        let target = if *kind == ServerKind::Gateway {
            format!(
                "  (target <= {MEMORY_TARGET_KIB} KiB: {})",
                verdict(per <= MEMORY_TARGET_KIB)
            )
        } else {
            String::new()
        };
        println!(
            "{:<8} {:>14} {:>14} {:>12.2} {:>20}{target}",
            kind.name(),
            report.rss_before_kib,
            report.rss_after_kib,
            per,
            report.server_reported_connections
        );
    }
}
