//! Running the external tools (systemctl, journalctl, docker, ollama) without a shell.
//!
//! Every call goes through [`CommandRunner::run`]: arguments are passed as a vector (never
//! interpolated into a shell line), stdin is closed, the child gets its own process group and a
//! deadline; when the deadline passes, the whole group is killed with SIGKILL, so a wrapper that
//! forks (the `docker` CLI runs the compose plugin as a child) cannot leave work behind.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

/// `ETXTBSY`: an executable that another thread of this process still holds open for writing
/// (it was just written, and a concurrent fork inherited the descriptor) cannot be executed yet.
const ETXTBSY: i32 = 26;
/// How often a spawn is retried on `ETXTBSY` before giving up.
const TEXT_BUSY_RETRIES: u32 = 20;

/// Why a command did not produce a successful result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    /// The program does not exist (spawn failed with `ENOENT`).
    #[error(
        "`{program}` was not found; install it or set its path under [ops.binaries] in the config"
    )]
    NotFound {
        /// The program as configured.
        program: String,
    },
    /// The program exists but could not be started.
    #[error("could not start `{program}`: {reason}")]
    Spawn {
        /// The program as configured.
        program: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The program ran and exited with a failure status.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// Program and arguments, for the operator.
        command: String,
        /// `exit status N` or `killed by signal N`.
        status: String,
        /// The program's standard error (trimmed; standard output when stderr was empty).
        stderr: String,
    },
    /// The program did not finish in time and was killed.
    #[error("`{command}` did not finish within {seconds} s and was killed")]
    Timeout {
        /// Program and arguments, for the operator.
        command: String,
        /// The deadline that passed.
        seconds: u64,
    },
}

/// What a finished command printed.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    /// Standard output, decoded lossily as UTF-8.
    pub stdout: String,
    /// Standard error, decoded lossily as UTF-8.
    pub stderr: String,
}

/// Runs programs with a deadline; cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandRunner {
    timeout: Duration,
}

/// One program invocation: program, arguments and extra environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Invocation {
    /// A call of `program` with no arguments yet.
    pub fn new(program: impl AsRef<Path>) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable for the child (the rest is inherited).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The arguments, in order.
    pub fn arg_list(&self) -> &[String] {
        &self.args
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.display())?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

impl CommandRunner {
    /// A runner whose commands get `timeout` to finish.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// The deadline applied by [`CommandRunner::run`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same runner with another deadline (used for long `pull` operations).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self { timeout }
    }

    /// Runs the invocation and returns its output when it exits with status 0.
    pub async fn run(&self, invocation: &Invocation) -> Result<CommandOutput, CommandError> {
        let program = invocation.program.display().to_string();
        let child = spawn(invocation, &program).await?;
        let pid = child.id();
        tracing::debug!(command = %invocation, "running operator command");
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => {
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                if output.status.success() {
                    Ok(CommandOutput { stdout, stderr })
                } else {
                    let status = match (output.status.code(), signal_of(&output.status)) {
                        (Some(code), _) => format!("exit status {code}"),
                        (None, Some(signal)) => format!("killed by signal {signal}"),
                        (None, None) => "abnormal exit".to_owned(),
                    };
                    let detail = if stderr.trim().is_empty() {
                        stdout.trim()
                    } else {
                        stderr.trim()
                    };
                    Err(CommandError::Failed {
                        command: invocation.to_string(),
                        status,
                        stderr: if detail.is_empty() {
                            "no output".to_owned()
                        } else {
                            detail.to_owned()
                        },
                    })
                }
            }
            Ok(Err(err)) => Err(CommandError::Spawn {
                program,
                reason: format!("waiting for it failed: {err}"),
            }),
            Err(_elapsed) => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    // The child leads its own process group (see `spawn`), so this reaches
                    // everything it started. ESRCH (already gone) is fine.
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                tracing::warn!(command = %invocation, seconds = self.timeout.as_secs(), "operator command timed out; killed");
                Err(CommandError::Timeout {
                    command: invocation.to_string(),
                    seconds: self.timeout.as_secs(),
                })
            }
        }
    }
}

async fn spawn(
    invocation: &Invocation,
    program: &str,
) -> Result<tokio::process::Child, CommandError> {
    let mut attempt = 0;
    loop {
        let mut command = Command::new(&invocation.program);
        command
            .args(invocation.args.iter().map(OsStr::new))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for (key, value) in &invocation.envs {
            command.env(key, value);
        }
        match command.spawn() {
            Ok(child) => return Ok(child),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(CommandError::NotFound {
                    program: program.to_owned(),
                });
            }
            Err(err) if err.raw_os_error() == Some(ETXTBSY) && attempt < TEXT_BUSY_RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => {
                return Err(CommandError::Spawn {
                    program: program.to_owned(),
                    reason: err.to_string(),
                });
            }
        }
    }
}

fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}
