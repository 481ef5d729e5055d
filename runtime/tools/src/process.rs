//! Running one command line in its own process group: one pipe carries stdout and stderr (so
//! their order is kept as the processes wrote it), the output is capped while the pipe keeps
//! being drained (so a chatty child never blocks), and timeout, cancellation or dropping the
//! future kill the whole group with SIGKILL before the shell is reaped.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ShellConfig;

/// How long output is still collected after the shell has exited (and its group was killed)
/// when something outside the group, such as a `setsid` daemon, keeps the pipe open.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What to run and within which limits.
pub(crate) struct Spec<'a> {
    pub shell: &'a Path,
    pub command: &'a str,
    pub cwd: &'a Path,
    /// Decides which of the gateway's environment variables the command gets (`pass_env`
    /// minus `hide_env`); it gets nothing else but `PWD`.
    pub env: &'a ShellConfig,
    pub timeout: Duration,
    pub output_cap: usize,
    pub kill_background_on_exit: bool,
    pub cancel: &'a CancellationToken,
}

/// How the run ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The shell exited on its own.
    Exited(ExitStatus),
    /// The timeout fired; the group was killed.
    TimedOut,
    /// The cancellation token fired; the group was killed.
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub output: Vec<u8>,
    pub truncated: bool,
    pub ending: Ending,
    /// Process id of the shell, which is also its process group id.
    pub pid: u32,
}

/// Kills the process group when dropped while armed, so a dropped future leaves no processes.
struct GroupKiller {
    pgid: Pid,
    armed: bool,
}

impl GroupKiller {
    fn kill(&self) {
        match killpg(self.pgid, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => tracing::warn!(pgid = %self.pgid, %error, "cannot kill process group"),
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

/// Spawns the command and follows it to the end. `Err` only when it cannot be started.
pub(crate) async fn run(spec: Spec<'_>) -> io::Result<Outcome> {
    // Close-on-exec, so that commands spawned concurrently by other calls do not inherit our
    // write end and hold the pipe open; dup2 onto stdout/stderr clears the flag in the child.
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let mut child = spawn(&spec, write_end)?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the shell exited before its process id was read"))?;
    let pgid = i32::try_from(pid)
        .map(Pid::from_raw)
        .map_err(|_| io::Error::other("process id out of range"))?;
    let mut killer = GroupKiller { pgid, armed: true };
    let mut reader = pipe::Receiver::from_owned_fd(read_end)?;

    let mut collector = Collector::new(spec.output_cap);
    let mut buf = vec![0u8; 16 * 1024];
    let mut killed: Option<Ending> = None;
    let status = {
        let wait = child.wait();
        tokio::pin!(wait);
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                _ = spec.cancel.cancelled(), if killed.is_none() => {
                    killer.kill();
                    killed = Some(Ending::Cancelled);
                }
                _ = &mut deadline, if killed.is_none() => {
                    killer.kill();
                    killed = Some(Ending::TimedOut);
                }
                status = &mut wait => break status?,
                read = reader.read(&mut buf), if !collector.eof => collector.take(read, &buf),
            }
        }
    };
    if killed.is_some() || spec.kill_background_on_exit {
        // The shell is reaped; this takes any background jobs it left.
        killer.kill();
    }
    // From here on the group is either gone or meant to outlive the call.
    killer.armed = false;

    drain(&mut reader, &mut collector, &mut buf, pid).await;
    let ending = killed.unwrap_or(Ending::Exited(status));
    Ok(Outcome {
        output: collector.output,
        truncated: collector.truncated,
        ending,
        pid,
    })
}

/// Starts `shell -c command` in a process group of its own, stdout and stderr both into
/// `write_end`, with the filtered environment.
fn spawn(spec: &Spec<'_>, write_end: OwnedFd) -> io::Result<Child> {
    let stderr_end: OwnedFd = write_end.try_clone()?;
    let mut command = Command::new(spec.shell);
    // An empty environment plus the allow-list: a secret the gateway was started with
    // reaches a command only if pass_env names it (and hide_env does not).
    command.env_clear();
    let env_filter = spec.env.env_filter();
    for (name, value) in std::env::vars_os() {
        if name.to_str().is_some_and(|name| env_filter.passes(name)) {
            command.env(&name, &value);
        }
    }
    command
        .arg("-c")
        .arg(spec.command)
        .current_dir(spec.cwd)
        .env("PWD", spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0);
    command.spawn()
    // `command` drops here and with it our copies of the write end, so EOF on the read end
    // means every process holding the pipe is gone.
}

/// Reads what is left in the pipe after the shell exited, for at most [`DRAIN_GRACE`].
async fn drain(reader: &mut pipe::Receiver, collector: &mut Collector, buf: &mut [u8], pid: u32) {
    let drain_deadline = Instant::now() + DRAIN_GRACE;
    while !collector.eof {
        tokio::select! {
            _ = tokio::time::sleep_until(drain_deadline) => {
                tracing::debug!(pid, "output pipe still open after the shell exited; stopped reading");
                break;
            }
            read = reader.read(&mut *buf) => collector.take(read, buf),
        }
    }
}

/// Keeps the first `cap` bytes read and counts the rest as truncated.
struct Collector {
    output: Vec<u8>,
    cap: usize,
    truncated: bool,
    eof: bool,
}

impl Collector {
    fn new(cap: usize) -> Self {
        Self {
            output: Vec::with_capacity(cap.min(64 * 1024)),
            cap,
            truncated: false,
            eof: false,
        }
    }

    fn take(&mut self, read: io::Result<usize>, buf: &[u8]) {
        match read {
            Ok(0) => self.eof = true,
            Ok(n) => {
                let room = self.cap.saturating_sub(self.output.len());
                if n > room {
                    self.truncated = true;
                }
                self.output.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "reading command output failed; output may be incomplete");
                self.eof = true;
            }
        }
    }
}

/// Text of an exit status that is not success: `exit code 3`, `killed by signal SIGTERM (15)`.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) => match Signal::try_from(signal) {
            Ok(name) => format!("killed by signal {name} ({signal})"),
            Err(_) => format!("killed by signal {signal}"),
        },
        None => format!("ended with status {status}"),
    }
}

/// Bytes to text, dropping a multi-byte character cut in half at the end by the cap.
pub(crate) fn into_text(mut bytes: Vec<u8>, cut: bool) -> String {
    if cut {
        let len = bytes.len();
        let incomplete = incomplete_tail(&bytes);
        bytes.truncate(len - incomplete);
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// Length of a UTF-8 sequence at the end of `bytes` that is started but not complete.
fn incomplete_tail(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let byte = bytes[len - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needed = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_multibyte_character_is_dropped() {
        let text = "aé€😀".as_bytes().to_vec();
        for cut in 1..text.len() {
            let got = into_text(text[..cut].to_vec(), true);
            assert!("aé€😀".starts_with(&got), "cut {cut}: {got:?}");
            assert!(!got.contains('\u{FFFD}'));
        }
        assert_eq!(into_text(text, true), "aé€😀");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(into_text(vec![b'a', 0xFF, b'b'], false), "a\u{FFFD}b");
    }
}
