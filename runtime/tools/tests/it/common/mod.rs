//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use flynn_tools::{
    CancellationToken, ToolContext, ToolError, ToolOutput, ToolRegistry, ToolsConfig,
};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::Value;

/// A temp dir holding a workspace folder `ws` (created) and room for things outside it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub registry: ToolRegistry,
}

impl Fixture {
    pub fn new(config: ToolsConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        Self {
            dir,
            registry: ToolRegistry::with_defaults(&config),
        }
    }

    pub fn default() -> Self {
        Self::new(ToolsConfig::default())
    }

    pub fn ws(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn cx(&self) -> ToolContext {
        ToolContext::new(self.ws(), "test:1", CancellationToken::new())
    }

    pub async fn run(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        self.registry.execute(tool, args, self.cx()).await
    }
}

/// The process is gone: no such pid, or only its zombie remains (dead, waiting for a parent
/// that may never reap it, as with a container's PID 1).
pub fn is_dead(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => true,
        _ => match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
            Err(_) => true,
        },
    }
}

/// How long a test waits for something before failing: a liveness bound far above what any load
/// makes it take, against alternatives that take ten minutes (`sleep 600`) or forever.
pub const LIVENESS: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads a FIFO to its end in a blocking thread: returns once the writer has written and closed.
pub async fn read_fifo(path: &Path) -> String {
    let path = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(path));
    tokio::time::timeout(LIVENESS, read)
        .await
        .expect("the command never wrote to the FIFO")
        .unwrap()
        .unwrap()
}

pub fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Parses "<shell pid> <background pid>".
pub fn two_pids(line: &str) -> (i32, i32) {
    let mut parts = line.split_whitespace().map(|p| p.parse::<i32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// Watches a process through a pidfd (Linux 5.3+): `None` when it is already gone.
pub fn watch_exit(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; nothing is borrowed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Awaits the end of a watched process (its pidfd turns readable when it terminates).
pub async fn exited(watch: Option<std::os::fd::OwnedFd>) -> bool {
    let Some(fd) = watch else { return true };
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and unchanged for as
    // long as the AsyncFd exists.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    let Ok(fd) = registered else {
        panic!("cannot register the pidfd with tokio");
    };
    tokio::time::timeout(LIVENESS, fd.readable()).await.is_ok()
}

/// Awaits the end of `pid` (up to [`LIVENESS`]). A SIGKILLed process closes its files before it turns
/// into a zombie, so "the output pipe hit EOF" does not yet mean "dead": await the pidfd.
pub async fn gone(pid: i32) -> bool {
    exited(watch_exit(pid)).await
}
