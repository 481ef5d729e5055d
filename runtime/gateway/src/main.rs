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

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    }
    .with_env();
    if let Some(port) = cli.port {
        config.server.port = port;
    }
    if let Some(bind) = cli.bind {
        config.server.bind = bind;
    }
    if let Some(dir) = &cli.data_dir {
        config.storage.data_dir = Some(dir.clone());
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ConfigSchema) = cli.command {
        println!(
            "{}",
            serde_json::to_string_pretty(&Config::json_schema()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("flynn-gateway: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        return match config
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
        };
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    // The daemon's own recent lines feed `system.serviceLogs` (source systemd:flynn).
    let buffer = flynn_gateway::logging::buffer(config.ops.log_buffer_lines);
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
            eprintln!("flynn-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match flynn_gateway::start(config, cli.config.clone()).await {
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
    })
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
