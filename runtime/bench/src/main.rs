//! `flynn-bench`: the gateway against a raw tokio-tungstenite server, side by side.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use flynn_bench::agent_suite::{self, AgentSettings};
use flynn_bench::child::{self, GatewaySetup, ServerKind};
use flynn_bench::history::HistorySpec;
use flynn_bench::raw_server::{RawOptions, RawReply};
use flynn_bench::suite::{self, Settings};
use flynn_bench::{BenchError, idle_large, pin, raw_server};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    name = "flynn-bench",
    about = "Benchmarks the Flynn gateway against a minimal tokio-tungstenite server (127.0.0.1 only)",
    long_about = "Runs each server in its own process (pinned with taskset to core 0 when there are two \
                  cores) and the load generator in this one (core 1): system.info throughput and p50/p99 \
                  latency at N connections with 1 and 16 requests in flight, and server memory per idle \
                  connection at 10,000 connections. Figures go to stdout, progress to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Throughput and memory, both servers.
    All(Options),
    /// Throughput and latency only.
    Throughput(Options),
    /// Memory per idle connection only.
    Memory(Options),
    /// Short agent turns on the embedded model: turns/s, server CPU per turn, latency, and a
    /// session holding many messages against a fresh one.
    Turns(AgentOptions),
    /// Long streamed answers (`[[long:3000]]`): server CPU per streamed event.
    Stream(AgentOptions),
    /// As many idle connections as the descriptor limit allows (several loopback source
    /// addresses): memory per connection and system.info latency while they are held.
    Idle(IdleOptions),
    /// Run one server until stdin closes (used by the other commands as the server process).
    #[command(hide = true)]
    Serve {
        #[arg(value_enum)]
        kind: ServerKind,
        /// tungstenite write_buffer_size of the raw server.
        #[arg(long, default_value_t = raw_server::gateway_write_buffer())]
        write_buffer: usize,
        /// tungstenite read_buffer_size of the raw server.
        #[arg(long, default_value_t = raw_server::gateway_read_buffer())]
        read_buffer: usize,
        /// What the raw server's reply holds.
        #[arg(long, value_enum, default_value_t = RawReply::Gateway)]
        reply: RawReply,
        /// Fill sessions `<prefix>0..` with history before the gateway starts.
        #[arg(long)]
        history_prefix: Option<String>,
        #[arg(long, default_value_t = 0)]
        history_sessions: usize,
        #[arg(long, default_value_t = 0)]
        history_messages: usize,
        /// The gateway's server.max_connections.
        #[arg(long)]
        max_connections: Option<usize>,
        /// An OpenAI-compatible API root to use as the gateway's model.
        #[arg(long)]
        model_url: Option<String>,
    },
}

#[derive(Args, Clone)]
struct IdleOptions {
    /// Idle connections (default: the descriptor hard limit less 1,000).
    #[arg(long)]
    connections: Option<usize>,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How long the connections stay idle before memory is read, in seconds.
    #[arg(long, default_value_t = 5.0)]
    idle_seconds: f64,
    /// system.info calls, one at a time, timed while the connections are held.
    #[arg(long, default_value_t = 2_000)]
    probes: usize,
    /// Do not pin processes to cores.
    #[arg(long)]
    no_pin: bool,
}

#[derive(Args, Clone)]
struct AgentOptions {
    /// Sessions (one connection, one turn in flight each); one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = vec![50, 1])]
    sessions: Vec<usize>,
    /// Warm-up before measuring, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured window per run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Runs per shape; the summary uses the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `turns` only: messages in each of the pre-filled sessions compared with fresh ones (0
    /// skips the comparison).
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Do not pin processes to cores.
    #[arg(long)]
    no_pin: bool,
    /// `stream` only: the model is an OpenAI-compatible SSE server in the load process
    /// (several events per TCP write, as a real API streams) instead of the embedded model.
    #[arg(long)]
    model_server: bool,
}

#[derive(Args, Clone)]
struct Options {
    /// Connections for the throughput runs.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection; one run per value.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16])]
    in_flight: Vec<usize>,
    /// Warm-up before measuring, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured window per run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Idle connections for the memory test.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// How long the idle connections stay idle before memory is read, in seconds.
    #[arg(long, default_value_t = 3.0)]
    idle_seconds: f64,
    /// Handshakes in progress at once while opening the idle connections.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Which servers to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![ServerKind::Raw, ServerKind::Gateway])]
    servers: Vec<ServerKind>,
    /// Load runs per server and shape (servers alternate); the summary uses the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// tungstenite write_buffer_size of the raw server in bytes (default: the gateway's; 0
    /// writes every fed frame at once).
    #[arg(long, default_value_t = raw_server::gateway_write_buffer())]
    raw_write_buffer: usize,
    /// tungstenite read_buffer_size of the raw server in bytes (default: the gateway's).
    #[arg(long, default_value_t = raw_server::gateway_read_buffer())]
    raw_read_buffer: usize,
    /// The raw server's `system.info` reply: `gateway` (the same members as the gateway's, so
    /// both send the same bytes) or `minimal` (the protocol document's version, uptime and
    /// connections only).
    #[arg(long, value_enum, default_value_t = RawReply::Gateway)]
    raw_reply: RawReply,
    /// Do not pin processes to cores.
    #[arg(long)]
    no_pin: bool,
    /// Measure an already running server at this address instead of starting one (e.g. the
    /// release `flynn-gateway` binary); needs --attach-pid and a single --servers label.
    #[arg(long, requires = "attach_pid")]
    attach: Option<std::net::SocketAddr>,
    /// Process id of the --attach server (its memory and CPU are read from /proc).
    #[arg(long, requires = "attach")]
    attach_pid: Option<u32>,
}

fn seconds(value: f64, name: &str) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(value)
        .map_err(|e| BenchError::Settings(format!("--{name} {value}: {e}")))
}

impl Options {
    fn settings(
        &self,
        pinning: Option<pin::Pinning>,
        cores: usize,
    ) -> Result<Settings, BenchError> {
        let attach = match (self.attach, self.attach_pid) {
            (Some(addr), Some(pid)) => {
                if self.servers.len() != 1 {
                    return Err(BenchError::Settings(
                        "with --attach, name the attached server with exactly one --servers value"
                            .into(),
                    ));
                }
                Some((addr, pid))
            }
            _ => None,
        };
        Ok(Settings {
            cores,
            rounds: self.rounds,
            raw: RawOptions {
                write_buffer: self.raw_write_buffer,
                read_buffer: self.raw_read_buffer,
                reply: self.raw_reply,
            },
            attach,
            connections: self.connections,
            in_flight: self.in_flight.clone(),
            warmup: seconds(self.warmup, "warmup")?,
            duration: seconds(self.duration, "duration")?,
            idle_connections: self.idle_connections,
            idle: seconds(self.idle_seconds, "idle-seconds")?,
            concurrency: self.concurrency,
            servers: self.servers.clone(),
            pinning,
        })
    }
}

/// The same allocator as the `flynn-gateway` daemon (mimalloc), so both servers this binary runs
/// (the gateway and the raw baseline) and the load generator allocate as the shipped daemon does.
#[global_allocator]
static GLOBAL: flynn_gateway::allocator::MiMalloc = flynn_gateway::allocator::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            kind,
            write_buffer,
            read_buffer,
            reply,
            history_prefix,
            history_sessions,
            history_messages,
            max_connections,
            model_url,
        } => serve(
            kind,
            RawOptions {
                write_buffer,
                read_buffer,
                reply,
            },
            GatewaySetup {
                history: history_prefix.map(|prefix| HistorySpec {
                    prefix,
                    sessions: history_sessions,
                    messages: history_messages,
                }),
                max_connections,
                model_url,
            },
        ),
        Command::All(options) => bench(options, true, true),
        Command::Throughput(options) => bench(options, true, false),
        Command::Memory(options) => bench(options, false, true),
        Command::Turns(options) => agent(options, false),
        Command::Stream(options) => agent(options, true),
        Command::Idle(options) => idle_large(options),
    }
}

/// The server process: logs like the gateway daemon does (so the gateway pays for its
/// subscriber as in production), one multi-threaded runtime like the daemon's.
fn serve(kind: ServerKind, raw: RawOptions, setup: GatewaySetup) -> ExitCode {
    let level = flynn_gateway::Config::default().logging.level;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&level));
    let buffer =
        flynn_gateway::logging::buffer(flynn_gateway::Config::default().ops.log_buffer_lines);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(buffer.layer())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flynn-bench serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(child::serve(kind, raw, setup)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The parent waits for a `listening` line; anything else on stdout ends its wait.
            println!("failed: {e}");
            eprintln!("flynn-bench serve {}: {e}", kind.name());
            ExitCode::FAILURE
        }
    }
}

/// Logging to stderr, then pinning this process (before any thread exists: threads inherit
/// the mask, the server children get theirs from `taskset -c`). Returns the core count seen
/// before pinning and the pinning, or `None` when pinning failed.
fn prepare(no_pin: bool) -> Option<(usize, Option<pin::Pinning>)> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinning = pin::plan(no_pin);
    if let Some(p) = pinning
        && let Err(e) = pin::pin_this_process(p.load_core)
    {
        eprintln!("flynn-bench: {e}");
        return None;
    }
    Some((cores, pinning))
}

/// The load generator is one thread on its core: a single-threaded runtime wastes nothing on
/// work stealing.
fn load_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("flynn-bench: cannot start the async runtime: {e}");
            None
        }
    }
}

fn agent(options: AgentOptions, stream: bool) -> ExitCode {
    let Some((_, pinning)) = prepare(options.no_pin) else {
        return ExitCode::FAILURE;
    };
    let (warmup, duration) = match (
        seconds(options.warmup, "warmup"),
        seconds(options.duration, "duration"),
    ) {
        (Ok(w), Ok(d)) => (w, d),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("flynn-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = AgentSettings {
        sessions: options.sessions,
        warmup,
        duration,
        rounds: options.rounds,
        history: if stream { 0 } else { options.history },
        model_server: stream && options.model_server,
        pinning,
    };
    let Some(runtime) = load_runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        if stream {
            let rows = agent_suite::stream(&settings).await?;
            agent_suite::print_stream(&settings, &rows);
        } else {
            let rows = agent_suite::turns(&settings).await?;
            agent_suite::print_turns(&settings, &rows);
        }
        Ok::<(), BenchError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn idle_large(options: IdleOptions) -> ExitCode {
    let Some((_, pinning)) = prepare(options.no_pin) else {
        return ExitCode::FAILURE;
    };
    let limit = match idle_large::raise_own_descriptor_limit() {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let connections = options
        .connections
        .unwrap_or_else(|| usize::try_from(limit.saturating_sub(1_000)).unwrap_or(usize::MAX));
    let idle = match seconds(options.idle_seconds, "idle-seconds") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let spec = idle_large::LargeIdleSpec {
        connections,
        concurrency: options.concurrency,
        idle,
        probes: options.probes,
    };
    let Some(runtime) = load_runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        let server = child::ServerProcess::spawn(
            ServerKind::Gateway,
            pinning.map(|p| p.server_core),
            RawOptions::default(),
            &GatewaySetup {
                history: None,
                max_connections: Some(connections + 16),
                model_url: None,
            },
        )
        .await?;
        let report = idle_large::run(server.addr, server.pid, spec).await;
        if let Err(e) = server.stop().await {
            tracing::warn!(error = %e, "server shutdown");
        }
        idle_large::print(&report?, limit);
        Ok::<(), BenchError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(options: Options, throughput: bool, memory: bool) -> ExitCode {
    let Some((cores, pinning)) = prepare(options.no_pin) else {
        return ExitCode::FAILURE;
    };
    let settings = match options.settings(pinning, cores) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = load_runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        suite::print_machine(&settings);
        if throughput {
            let rows = suite::throughput(&settings).await?;
            suite::print_throughput(&settings, &rows);
        }
        if memory {
            let reports = suite::memory(&settings).await?;
            suite::print_memory(&settings, &reports);
        }
        Ok::<(), BenchError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flynn-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
