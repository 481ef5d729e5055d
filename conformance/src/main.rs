//! `flynn-conformance`: hold a gateway (`run`) or a client (`serve`) to the Flynn protocol's
//! transcripts, record new transcripts (`record`), check them (`validate`) and list what they
//! cover (`coverage`). See conformance/README.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use flynn_conformance::coverage::{Coverage, Exceptions};
use flynn_conformance::record::{RecordOptions, Recorder};
use flynn_conformance::report::Report;
use flynn_conformance::run::{RunOptions, run_all};
use flynn_conformance::serve::{ServeOptions, Server};
use flynn_conformance::spec::Spec;
use flynn_conformance::transcript::{Transcript, load_all};
use flynn_conformance::validate::validate_all;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "flynn-conformance",
    version,
    about = "Conformance suite of the Flynn gateway protocol: play transcripts against a gateway or a client",
    long_about = "Plays JSONL transcripts against any Flynn gateway (run) or any client (serve), records new ones \
                  through a proxy (record), checks them against the spec (validate) and lists what they cover \
                  (coverage). Every frame on the wire is validated against spec/flynn.openrpc.json. Exit status: \
                  0 when everything passed, 1 when something failed, 2 when the command could not run."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Output {
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Play the client side of transcripts against a gateway (server conformance).
    Run {
        /// The gateway's WebSocket URL, e.g. ws://127.0.0.1:18800/
        #[arg(long)]
        url: String,
        /// The gateway's token (also read from FLYNN_SERVER_TOKEN).
        #[arg(long, env = "FLYNN_SERVER_TOKEN")]
        token: Option<String>,
        /// How long an expected frame may take, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// Only check what the transcripts list: skip frames that do not match and ignore
        /// frames nobody expects (to drive `record` with a draft).
        #[arg(long)]
        loose: bool,
        #[command(flatten)]
        output: Output,
        /// Transcript files or folders of *.jsonl.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Play the server side of transcripts to a client under test (client conformance).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:18801 (port 0 picks a free one).
        #[arg(long)]
        listen: SocketAddr,
        /// The token the client must present.
        #[arg(long)]
        token: Option<String>,
        /// How long a frame from the client may take, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// How long to wait for a client to connect for the next transcript, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        idle_timeout_ms: u64,
        #[command(flatten)]
        output: Output,
        /// Transcript files or folders of *.jsonl.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Proxy a client to a gateway and write the exchange as a transcript (stop with Ctrl-C).
    Record {
        /// Address the client connects to, e.g. 127.0.0.1:18802.
        #[arg(long)]
        listen: SocketAddr,
        /// The gateway's WebSocket URL.
        #[arg(long)]
        upstream: String,
        /// The token the client uses (written as ${TOKEN}).
        #[arg(long)]
        token: Option<String>,
        /// Transcript name (default: OUT's file name).
        #[arg(long)]
        name: Option<String>,
        /// Transcript description.
        #[arg(long)]
        description: Option<String>,
        /// The transcript file to write.
        out: PathBuf,
    },
    /// Check transcripts against the spec without a gateway.
    Validate {
        #[command(flatten)]
        output: Output,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List which transcript covers which method, event, error code and feature.
    Coverage {
        /// Error codes allowed to be uncovered, with reasons (JSON: {"codes": [{"code", "reason"}]}).
        #[arg(long, value_name = "FILE")]
        exceptions: Option<PathBuf>,
        /// Write the Markdown table to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Fail (exit 1) when anything is uncovered; with --out, also when FILE is not up to date.
        #[arg(long)]
        check: bool,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flynn-conformance: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("flynn-conformance: {message}");
            ExitCode::from(2)
        }
    }
}

fn load(paths: &[PathBuf]) -> Result<(Arc<Spec>, Vec<Transcript>), String> {
    let spec = Spec::load().map_err(|e| e.to_string())?;
    let transcripts = load_all(paths).map_err(|e| e.to_string())?;
    Ok((Arc::new(spec), transcripts))
}

fn emit(report: &Report, output: &Output) -> Result<bool, String> {
    if output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = &output.junit {
        std::fs::write(path, report.to_junit())
            .map_err(|e| format!("cannot write the JUnit report {}: {e}", path.display()))?;
    }
    Ok(report.passed())
}

async fn execute(command: Command) -> Result<bool, String> {
    match command {
        Command::Run {
            url,
            token,
            timeout_ms,
            loose,
            output,
            paths,
        } => {
            let (spec, transcripts) = load(&paths)?;
            let mut options = RunOptions::new(url);
            options.token = token.filter(|t| !t.is_empty());
            options.timeout = Duration::from_millis(timeout_ms);
            options.loose = loose;
            let report = run_all(&spec, &transcripts, &options).await;
            emit(&report, &output)
        }
        Command::Serve {
            listen,
            token,
            timeout_ms,
            idle_timeout_ms,
            output,
            paths,
        } => {
            let mut options = ServeOptions::new(listen);
            options.token = token;
            options.timeout = Duration::from_millis(timeout_ms);
            options.idle_timeout = Duration::from_millis(idle_timeout_ms);
            serve(options, &output, &paths).await
        }
        Command::Record {
            listen,
            upstream,
            token,
            name,
            description,
            out,
        } => {
            record(RecordOptions {
                listen,
                upstream,
                out,
                name,
                description,
                token,
            })
            .await
        }
        Command::Validate { output, paths } => {
            let (spec, transcripts) = load(&paths)?;
            let report = validate_all(&spec, &transcripts);
            emit(&report, &output)
        }
        Command::Coverage {
            exceptions,
            out,
            check,
            paths,
        } => coverage(exceptions.as_deref(), out.as_deref(), check, &paths),
    }
}

/// `serve`: plays the transcripts to every client that connects.
async fn serve(options: ServeOptions, output: &Output, paths: &[PathBuf]) -> Result<bool, String> {
    let (spec, transcripts) = load(paths)?;
    let server = Server::bind(options).await.map_err(|e| e.to_string())?;
    if let Some(addr) = server.local_addr() {
        eprintln!(
            "flynn-conformance: serving {} transcript(s) on ws://{addr}/ (connect to ws://{addr}/<name> to pick one)",
            transcripts.len()
        );
    }
    let report = server.run(spec, transcripts).await;
    emit(&report, output)
}

/// `record`: proxies until Ctrl-C or SIGTERM, then writes the transcript.
async fn record(options: RecordOptions) -> Result<bool, String> {
    let spec = Arc::new(Spec::load().map_err(|e| e.to_string())?);
    let upstream = options.upstream.clone();
    let out = options.out.clone();
    let recorder = Recorder::bind(options).await.map_err(|e| e.to_string())?;
    if let Some(addr) = recorder.local_addr() {
        eprintln!(
            "flynn-conformance: recording on ws://{addr}/ -> {upstream}; stop with Ctrl-C to write {}",
            out.display()
        );
    }
    let report = recorder
        .run(spec, stop_signal())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("flynn-conformance: wrote {}", out.display());
    eprint!("{}", report.to_text());
    Ok(report.passed())
}

/// `coverage`: writes (or with `check`, compares) the coverage table and names the gaps.
fn coverage(
    exceptions: Option<&Path>,
    out: Option<&Path>,
    check: bool,
    paths: &[PathBuf],
) -> Result<bool, String> {
    let (spec, transcripts) = load(paths)?;
    let exceptions = match exceptions {
        Some(path) => Exceptions::load(path).map_err(|e| e.to_string())?,
        None => Exceptions::default(),
    };
    let coverage = Coverage::compute(&spec, &transcripts);
    let markdown = coverage.to_markdown(&spec, &exceptions);
    let gaps = coverage.gaps(&exceptions);
    let mut ok = gaps.is_empty();
    match out {
        Some(path) if check => {
            let current = std::fs::read_to_string(path).unwrap_or_default();
            if current != markdown {
                eprintln!(
                    "flynn-conformance: {} is not up to date; run without --check to rewrite it",
                    path.display()
                );
                ok = false;
            }
        }
        Some(path) => std::fs::write(path, &markdown)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{markdown}"),
    }
    for gap in &gaps {
        eprintln!("uncovered: {gap}");
    }
    Ok(ok || !check)
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
