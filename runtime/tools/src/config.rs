//! `[tools]` section of the gateway's TOML configuration. Every field has a default, so an absent
//! section is valid. The gateway embeds [`ToolsConfig`] in its own config type; its JSON Schema
//! comes from the same schemars derive.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[tools]`: the workspace folder and the settings of each built-in tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// Folder the file tools are confined to and where `shell.exec` runs. Unset: `workspace`
    /// inside the gateway's data directory; a relative path is taken relative to the data
    /// directory (see [`ToolsConfig::workspace_dir`]). Created when missing.
    pub workspace: Option<PathBuf>,
    /// `[tools.shell]`: the `shell.exec` tool.
    pub shell: ShellConfig,
    /// `[tools.files]`: the `file.read`, `file.write` and `file.list` tools.
    pub files: FilesConfig,
    /// Most tool calls one session may have running at once, `tools.execute` and the agent's
    /// tool calls together; a call beyond it is refused at once (nothing is started), saying
    /// so. At least 1.
    pub max_concurrent_runs_per_session: usize,
}

/// Default of [`ToolsConfig::max_concurrent_runs_per_session`].
pub const DEFAULT_MAX_CONCURRENT_RUNS_PER_SESSION: usize = 4;

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            workspace: None,
            shell: ShellConfig::default(),
            files: FilesConfig::default(),
            max_concurrent_runs_per_session: DEFAULT_MAX_CONCURRENT_RUNS_PER_SESSION,
        }
    }
}

impl ToolsConfig {
    /// The workspace folder for a gateway whose data directory is `data_dir`.
    pub fn workspace_dir(&self, data_dir: &Path) -> PathBuf {
        match &self.workspace {
            Some(dir) if dir.is_absolute() => dir.clone(),
            Some(dir) => data_dir.join(dir),
            None => data_dir.join("workspace"),
        }
    }

    /// Checks what the types cannot; the message names the key and what to set.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_runs_per_session == 0 {
            return Err(
                "tools.max_concurrent_runs_per_session must be at least 1 (switch tools off with \
                 tools.shell.enabled and tools.files.enabled instead)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// `[tools.shell]`: how `shell.exec` runs commands and which commands it accepts.
///
/// Patterns in `allow` and `deny` are matched against each simple command of the command line
/// (the line is split at unquoted `;`, `&`, `&&`, `|`, `||`, `(`, `)` and newlines) and, for
/// `deny`, against the whole line too. A pattern containing `*` (any run of characters, spaces
/// and `/` included) or `?` (one ASCII character, or one byte of a longer UTF-8 one) is a glob
/// that must match the whole simple command; any other pattern is a prefix that must end at a
/// word boundary (`git` matches `git status` but not `gitk`). Runs of unquoted whitespace count
/// as one space.
///
/// `deny` wins over `allow`. With a non-empty `allow`, every simple command must match it and
/// command substitution (`$(..)`, backquotes, `<(..)`, `>(..)`) is refused because it cannot be
/// checked. `allow` is the enforcement mechanism; `deny` alone is a guard against accidents, not a
/// sandbox (a shell offers endless ways to spell a command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShellConfig {
    /// Offer `shell.exec` at all.
    pub enabled: bool,
    /// When non-empty, only commands matching one of these patterns run.
    pub allow: Vec<String>,
    /// Commands matching any of these patterns never run.
    pub deny: Vec<String>,
    /// Timeout when the call gives no `timeoutMs`, in milliseconds.
    pub default_timeout_ms: u64,
    /// Largest `timeoutMs` a call may ask for, in milliseconds.
    pub max_timeout_ms: u64,
    /// Bytes of combined stdout and stderr kept; the rest is read and discarded, and the result
    /// is marked `truncated`.
    pub output_cap_bytes: usize,
    /// Shell program, run as `<shell> -c <command>`.
    pub shell: PathBuf,
    /// Kill processes the command left running in the background once the shell exits (they are
    /// in the command's process group). Programs that must outlive the call can detach with
    /// `setsid`.
    pub kill_background_on_exit: bool,
    /// Environment variables of the gateway passed on to commands (globs on the name). Commands
    /// start from an empty environment and get only these (and `PWD`), so nothing else the
    /// gateway was started with reaches them.
    pub pass_env: Vec<String>,
    /// Environment variables commands never see, even when `pass_env` matches them (globs on
    /// the name), so a model cannot read the gateway's own secrets through `env`. The daemon
    /// also removes them from its own environment at start, keeping the values in memory.
    pub hide_env: Vec<String>,
}

impl ShellConfig {
    /// Whether commands get the gateway's variable `name`: `pass_env` matches it and
    /// `hide_env` does not. To check many names, compile once with [`ShellConfig::env_filter`].
    pub fn passes_env(&self, name: &str) -> bool {
        self.env_filter().passes(name)
    }

    /// Whether `hide_env` matches the variable `name`.
    pub fn hides_env(&self, name: &str) -> bool {
        self.env_filter().hides(name)
    }

    /// `pass_env` and `hide_env` compiled once, for checking a whole environment.
    pub fn env_filter(&self) -> EnvFilter {
        let compile = |key: &str, patterns: &[String]| {
            crate::glob::set(patterns.iter().map(String::as_str))
                .inspect_err(|error| {
                    tracing::error!(key, %error, "tools.shell.{key} does not compile; no variable is passed to commands");
                })
                .ok()
        };
        EnvFilter {
            pass: compile("pass_env", &self.pass_env),
            hide: compile("hide_env", &self.hide_env),
        }
    }
}

/// The compiled `pass_env` / `hide_env` globs. A list globset could not compile (never expected:
/// see [`crate::glob::matcher`]) fails closed: nothing passes, everything is hidden.
#[derive(Debug, Clone)]
pub struct EnvFilter {
    pass: Option<globset::GlobSet>,
    hide: Option<globset::GlobSet>,
}

impl EnvFilter {
    /// Whether a command gets the variable `name`.
    pub fn passes(&self, name: &str) -> bool {
        self.pass.as_ref().is_some_and(|set| set.is_match(name)) && !self.hides(name)
    }

    /// Whether `hide_env` matches `name`.
    pub fn hides(&self, name: &str) -> bool {
        self.hide.as_ref().is_none_or(|set| set.is_match(name))
    }
}

/// Default of [`ShellConfig::pass_env`]: what programs commonly need to find each other, the
/// home folder, the user, the locale, the terminal type, the time zone and the temp folder.
pub const DEFAULT_PASS_ENV: [&str; 11] = [
    "PATH", "HOME", "LANG", "LC_ALL", "LC_*", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR",
];

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow: Vec::new(),
            deny: Vec::new(),
            default_timeout_ms: 60_000,
            max_timeout_ms: 600_000,
            output_cap_bytes: 64 * 1024,
            shell: PathBuf::from("/bin/sh"),
            kill_background_on_exit: true,
            pass_env: DEFAULT_PASS_ENV.map(str::to_owned).to_vec(),
            hide_env: vec![
                "FLYNN_*".to_owned(),
                "ANTHROPIC_API_KEY".to_owned(),
                "OPENAI_API_KEY".to_owned(),
            ],
        }
    }
}

/// `[tools.files]`: limits of the workspace file tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Offer `file.read`, `file.write` and `file.list`.
    pub enabled: bool,
    /// Most bytes one `file.read` returns (larger files are read in pages with `offset`).
    pub max_read_bytes: u64,
    /// Largest `content` one `file.write` accepts, in bytes.
    pub max_write_bytes: u64,
    /// Most entries one `file.list` returns.
    pub max_list_entries: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_read_bytes: 256 * 1024,
            max_write_bytes: 10 * 1024 * 1024,
            max_list_entries: 1000,
        }
    }
}
