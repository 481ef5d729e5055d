//! The daemon as a real process: the `flynn-gateway` binary cargo builds for this package's
//! integration tests, started with `--port 0` on a data directory, its port read from the one
//! "listening on ws://127.0.0.1:PORT/" log line. Used where only a process will do: kill -9,
//! SIGTERM and exit codes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the daemon may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon binary (cargo builds it before the integration tests of the same package).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flynn-gateway"))
}

/// A running daemon process; killed when dropped.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl GatewayProcess {
    /// Starts the binary on a free port with `data_dir`, extra arguments and environment.
    pub async fn spawn(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start(Command::new(binary()), 0, data_dir, args, envs).await
    }

    /// Like `spawn`, on `port` (a restart on the port its clients know).
    pub async fn spawn_on_port(
        port: u16,
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        Self::start(Command::new(binary()), port, data_dir, args, envs).await
    }

    /// Like `spawn`, with the open-descriptor limit (soft and hard) set to `limit` by the shell
    /// before the binary starts.
    pub async fn spawn_with_fd_limit(
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        limit: u32,
    ) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(binary());
        Self::start(command, 0, data_dir, args, envs).await
    }

    /// Like `spawn`, with only the soft open-descriptor limit lowered to `limit` (the hard limit
    /// stays), as a login shell's default of 1,024 would.
    pub async fn spawn_with_soft_fd_limit(data_dir: &Path, args: &[&str], limit: u32) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -Sn {limit} && exec \"$0\" \"$@\""))
            .arg(binary());
        Self::start(command, 0, data_dir, args, &[]).await
    }

    async fn start(
        mut command: Command,
        port: u16,
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("FLYNN_SERVER_TOKEN")
            .env_remove("FLYNN_CONFIG")
            .env_remove("FLYNN_PORT")
            .env_remove("FLYNN_BIND")
            .env_remove("FLYNN_DATA_DIR")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn flynn-gateway");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let collected = stderr.clone();
        // Keeps draining stderr for the life of the process so the pipe never fills.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            let mut port_tx = Some(port_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = listening_addr(&line)
                    && let Some(tx) = port_tx.take()
                {
                    let _ = tx.send(addr);
                }
                if let Ok(mut text) = collected.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let addr = match tokio::time::timeout(START_TIMEOUT, port_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let status = child.try_wait().ok().flatten();
                panic!(
                    "flynn-gateway did not print its listening line (exit: {status:?}); stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL, then reaps the process.
    pub async fn kill9(&mut self) -> ExitStatus {
        self.child.start_kill().expect("SIGKILL");
        self.wait_exit(Duration::from_secs(60)).await
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "flynn-gateway did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr_text()
                )
            })
            .expect("wait for flynn-gateway")
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The address in the daemon's "listening on ws://ADDR/" line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("listening on ws://")? + "listening on ws://".len();
    let rest = &line[start..];
    let end = rest.find('/')?;
    rest[..end].parse().ok()
}
