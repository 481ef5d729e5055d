//! `flynn-gateway`: the daemon's command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flynn_gateway::Config;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    name = "flynn-gateway",
    version,
    about = "The Flynn gateway: WebSocket JSON-RPC and HTTP for a personal AI agent",
    long_about = "Runs the Flynn gateway. With no configuration it listens on 127.0.0.1:18800, stores \
                  sessions in a SQLite file under the XDG data directory and answers with the embedded \
                  default model. Secrets can come from the environment (FLYNN_SERVER_TOKEN)."
)]
struct Cli {
    /// Configuration file (TOML). Without one, every default applies.
    #[arg(long, short, env = "FLYNN_CONFIG")]
    config: Option<PathBuf>,
    /// Port to listen on (0 picks a free one); overrides server.port.
    #[arg(long, env = "FLYNN_PORT")]
    port: Option<u16>,
    /// Address to bind; overrides server.bind. Non-loopback addresses require a token.
    #[arg(long, env = "FLYNN_BIND")]
    bind: Option<IpAddr>,
    /// Data directory (SQLite file and workspace); overrides storage.data_dir.
    #[arg(long, env = "FLYNN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the JSON Schema of the configuration file (for editors).
    ConfigSchema,
    /// Validate the configuration file and exit.
    CheckConfig,
}

/// The configuration file (or the defaults), before the environment and the flags apply.
fn load_file(cli: &Cli) -> Result<Config, String> {
    match &cli.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

/// `file` with the environment's secrets (see [`seal_environment`]) and the flags applied.
fn apply_env_and_flags(cli: &Cli, file: Config) -> Config {
    let mut config = file.with_env();
    if let Some(port) = cli.port {
        config.server.port = port;
    }
    if let Some(bind) = cli.bind {
        config.server.bind = bind;
    }
    if let Some(dir) = &cli.data_dir {
        config.storage.data_dir = Some(dir.clone());
    }
    config
}

/// What [`seal_environment`] did, logged once tracing is up.
struct Sealed {
    /// Names (not values) of the variables taken out of the environment.
    removed: Vec<String>,
    /// Why the process could not be made non-dumpable, if it could not.
    dumpable_error: Option<String>,
}

/// Takes the daemon's secrets out of reach of the commands it runs. `hide_env` kept them out
/// of a command's own environment, but a command could still `cat /proc/$PPID/environ`.
///
/// 1. The secret variables (FLYNN_SERVER_TOKEN, each tier's API key variable, whatever
///    `tools.shell.hide_env` matches) are read and kept in memory for `Config::with_env`, which
///    `config.reload` calls again.
/// 2. Their values are overwritten in place, then they are removed from the environment:
///    `/proc/<pid>/environ` shows the memory the environment was first laid out in, which
///    removing a variable alone leaves as it was.
/// 3. On Linux the process is made non-dumpable, so processes of the same user (every tool it
///    runs) can read neither its `/proc/<pid>/environ` nor its memory (`/proc/<pid>/mem`,
///    ptrace). This also turns off core dumps.
///
/// Must run while the process has one thread: before the tokio runtime, tracing and the
/// store start (changing the environment races with any other thread reading it).
fn seal_environment(file: &Config) -> Sealed {
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let names = file.secret_env_names(present.iter().map(String::as_str));
    let mut kept = std::collections::BTreeMap::new();
    for name in &names {
        if let Some(value) = std::env::var_os(name) {
            kept.insert(name.clone(), value.to_string_lossy().into_owned());
        }
    }
    for name in &names {
        #[cfg(target_os = "linux")]
        environ::scrub_value(name);
        // SAFETY: the process has a single thread here (see above), so nothing reads or
        // writes the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
    flynn_gateway::config::keep_env_secrets(kept);
    #[cfg(target_os = "linux")]
    let dumpable_error = nix::sys::prctl::set_dumpable(false)
        .err()
        .map(|errno| errno.to_string());
    #[cfg(not(target_os = "linux"))]
    let dumpable_error = None;
    Sealed {
        removed: names.into_iter().collect(),
        dumpable_error,
    }
}

/// In-place overwriting of environment values, so they leave `/proc/<pid>/environ` too.
#[cfg(target_os = "linux")]
mod environ {
    use std::ffi::{CStr, c_char};

    unsafe extern "C" {
        /// The process environment: a null-terminated array of `NAME=value` C strings.
        static mut environ: *mut *mut c_char;
    }

    /// Overwrites the value of every `name=value` entry of the environment with NUL bytes
    /// (the entry then reads `name=`; remove it afterwards). Nothing else changes.
    pub(super) fn scrub_value(name: &str) {
        // SAFETY: called while the process has one thread (see `seal_environment`), so the
        // array and its strings do not change under us. `environ` is null or a
        // null-terminated array of pointers to NUL-terminated strings; each string we write
        // into is writable (the initial environment on the stack, or a copy setenv
        // allocated) and we write only within its length, before its terminating NUL.
        unsafe {
            let mut entry = environ;
            if entry.is_null() {
                return;
            }
            while !(*entry).is_null() {
                let text = CStr::from_ptr(*entry).to_bytes();
                let value_start = name.len() + 1;
                if text.len() >= value_start
                    && text.starts_with(name.as_bytes())
                    && text[name.len()] == b'='
                {
                    let value_len = text.len() - value_start;
                    std::ptr::write_bytes((*entry).add(value_start), 0, value_len);
                }
                entry = entry.add(1);
            }
        }
    }
}

/// mimalloc instead of glibc's malloc: fewer instructions per allocation on every hot path (a turn
/// about -5 %, a `system.info` request about -10 %), for about 0.4 KiB more per idle connection
/// and ~10 MiB more resident memory; measured in BENCHMARKS.md, "The allocator (finding 33)".
/// Called through `flynn_gateway::allocator` (word-aligned allocations take mimalloc's plain entry
/// points; BENCHMARKS.md, finding 34). To go back to the system allocator, delete these two lines
/// (and the `libmimalloc-sys` dependency).
#[global_allocator]
static GLOBAL: flynn_gateway::allocator::MiMalloc = flynn_gateway::allocator::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ConfigSchema) = cli.command {
        println!(
            "{}",
            serde_json::to_string_pretty(&Config::json_schema()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let file = match load_file(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("flynn-gateway: {message}");
            return ExitCode::from(2);
        }
    };
    // First, while this is the only thread: nothing below may run before it.
    let sealed = seal_environment(&file);
    let config = apply_env_and_flags(&cli, file);
    if let Some(Command::CheckConfig) = cli.command {
        return check_config(&config);
    }
    init_logging(&config);
    log_sealing(sealed);

    // The connection caps, not a login shell's soft limit (often 1,024), bound the clients.
    flynn_gateway::admission::raise_descriptor_limit();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flynn-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, cli.config.clone()))
}

/// `check-config`: validates the configuration and the exposure of its bind address.
fn check_config(config: &Config) -> ExitCode {
    match config
        .validate()
        .and_then(|()| config.check_exposure(config.server.bind))
    {
        Ok(()) => {
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flynn-gateway: {e}");
            ExitCode::from(2)
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` or `[logging] level`, text or JSON on stderr,
/// and the in-memory buffer behind `system.serviceLogs`.
fn init_logging(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    // The daemon's own recent lines feed `system.serviceLogs` (source systemd:flynn).
    let buffer = flynn_gateway::logging::buffer(config.ops.log_buffer_lines);
    // Colours only for a person at a terminal: not into journald, files or pipes, nor with
    // NO_COLOR; `[logging] format = "json"` for log shippers.
    let ansi = flynn_gateway::logging::use_ansi(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let (text, json) = match config.logging.format {
        flynn_gateway::config::LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            ),
            None,
        ),
        flynn_gateway::config::LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(buffer.layer())
        .init();
}

/// Says (once logging is up) what [`seal_environment`] did.
fn log_sealing(sealed: Sealed) {
    if !sealed.removed.is_empty() {
        tracing::info!(
            variables = %sealed.removed.join(", "),
            "secrets taken out of the process environment (kept in memory; tools never see them)"
        );
    }
    if let Some(error) = sealed.dumpable_error {
        tracing::warn!(
            %error,
            "cannot make the process non-dumpable; commands run as the same user may read its memory"
        );
    }
}

/// Starts the gateway and runs it until SIGINT or SIGTERM has shut it down.
async fn serve(config: Config, config_path: Option<PathBuf>) -> ExitCode {
    let running = match flynn_gateway::start(config, config_path).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("flynn-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let gateway = running.gateway.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "shutting down: cancelling runs, closing connections (1001), flushing the store"
        );
        gateway.shutdown_requested.notify_one();
    });
    running.wait().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
