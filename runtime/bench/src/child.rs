//! Servers in child processes, so their memory and CPU can be read from `/proc/<pid>` apart from
//! the load generator's, and so each can be pinned to its own core. The child prints
//! `listening ADDR` once on stdout and shuts down when its stdin closes (so it also goes away
//! if the bench dies).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::history::HistorySpec;
use crate::raw_server::RawOptions;
use crate::{BenchError, gateway_server, history, raw_server};

/// How the gateway child is set up beyond its defaults.
#[derive(Debug, Clone, Default)]
pub struct GatewaySetup {
    /// Sessions filled with history before the gateway starts.
    pub history: Option<HistorySpec>,
    /// `server.max_connections` (for the large idle scenario).
    pub max_connections: Option<usize>,
    /// The API root of an OpenAI-compatible model server to use instead of the embedded model
    /// (`stream --model-server`).
    pub model_url: Option<String>,
}

impl GatewaySetup {
    /// The `flynn-bench serve` arguments that carry this setup.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(h) = &self.history {
            args.extend([
                "--history-prefix".to_owned(),
                h.prefix.clone(),
                "--history-sessions".to_owned(),
                h.sessions.to_string(),
                "--history-messages".to_owned(),
                h.messages.to_string(),
            ]);
        }
        if let Some(max) = self.max_connections {
            args.extend(["--max-connections".to_owned(), max.to_string()]);
        }
        if let Some(url) = &self.model_url {
            args.extend(["--model-url".to_owned(), url.clone()]);
        }
        args
    }
}

/// Which server a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerKind {
    Raw,
    Gateway,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Gateway => "gateway",
        }
    }
}

/// A server running in a child process.
pub struct ServerProcess {
    pub kind: ServerKind,
    pub pid: u32,
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts `flynn-bench serve KIND` (under `taskset -c CORE` when `core` is given) and waits
    /// for its address. `raw` applies to the raw server.
    pub async fn spawn(
        kind: ServerKind,
        core: Option<usize>,
        raw: RawOptions,
        setup: &GatewaySetup,
    ) -> Result<Self, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::io("cannot find the bench's own executable", e))?;
        // FLYNN_BENCH_SERVER_WRAPPER (e.g. "valgrind --tool=callgrind") runs the server under
        // another program, for instruction-count profiles that the machine's load cannot skew.
        let wrapper: Vec<String> = std::env::var("FLYNN_BENCH_SERVER_WRAPPER")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut program: Vec<std::ffi::OsString> = Vec::new();
        if let Some(core) = core {
            program.extend(["taskset".into(), "-c".into(), core.to_string().into()]);
        }
        program.extend(wrapper.into_iter().map(Into::into));
        program.push(exe.into_os_string());
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]);
        command
            .arg("serve")
            .arg(kind.name())
            .arg("--write-buffer")
            .arg(raw.write_buffer.to_string())
            .arg("--read-buffer")
            .arg(raw.read_buffer.to_string())
            .arg("--reply")
            .arg(raw.reply.name())
            .args(setup.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            BenchError::io(
                format!("cannot start the {} server process", kind.name()),
                e,
            )
        })?;
        let pid = child.id().ok_or_else(|| {
            BenchError::Child(format!("the {} server exited at once", kind.name()))
        })?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Child("no stdout pipe to the server".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        // Filling history first may take a while.
        let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
            .await
            .map_err(|_| BenchError::Timeout(format!("the {} server's start", kind.name())))?
            .map_err(|e| BenchError::io("cannot read the server's stdout", e))?
            .unwrap_or_default();
        let addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| {
                BenchError::Child(format!(
                    "the {} server did not start (it said {line:?}; see its stderr above)",
                    kind.name()
                ))
            })?;
        Ok(Self {
            kind,
            pid,
            addr,
            child,
            stdin,
        })
    }

    /// Closes the child's stdin (its signal to shut down) and waits for it, killing it if it
    /// takes longer than 15 s.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BenchError::io("waiting for the server process", e)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(BenchError::Timeout(format!(
                    "the {} server did not shut down within 15 s; killed",
                    self.kind.name()
                )))
            }
        }
    }
}

/// The body of `flynn-bench serve KIND`: start, announce the address, serve until stdin closes.
pub async fn serve(
    kind: ServerKind,
    raw: RawOptions,
    setup: GatewaySetup,
) -> Result<(), BenchError> {
    match kind {
        ServerKind::Raw => {
            let server = raw_server::RawServer::start(raw).await?;
            announce(server.addr);
            wait_for_stdin_eof().await;
            server.stop();
        }
        ServerKind::Gateway => {
            let dir = ScratchDir::new()
                .map_err(|e| BenchError::io("cannot create a temp data dir", e))?;
            // As the daemon would: descriptors up to the hard limit, for the large idle run.
            flynn_gateway::admission::raise_descriptor_limit();
            if let Some(spec) = &setup.history {
                history::fill(&gateway_server::db_path(&dir.0), spec).await?;
            }
            let running =
                gateway_server::start(&dir.0, setup.max_connections, setup.model_url.as_deref())
                    .await?;
            announce(running.addr);
            wait_for_stdin_eof().await;
            running.shutdown().await;
        }
    }
    Ok(())
}

/// The gateway child's data directory, removed when the child ends. Not `tempfile`: as a normal
/// dependency of this crate it changed the feature set the gateway's dependencies are built
/// with, so every `cargo run -p` after a workspace build recompiled the gateway's chain.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "flynn-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&path)?;
        Ok(Self(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn announce(addr: SocketAddr) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {addr}");
    let _ = out.flush();
}

async fn wait_for_stdin_eof() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
