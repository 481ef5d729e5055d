//! Shared test helpers: fake tools (shell scripts that record their arguments and print
//! recorded output) in a temp dir, fixture paths and a config pointing at the fakes.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flynn_ops::{LogBuffer, Ops, OpsConfig};
use tempfile::TempDir;

/// Argument separator in the call logs (ASCII unit separator: never in an argument).
const SEP: char = '\u{1f}';

/// A temp dir of fake executables. Each script appends its arguments to `<name>.calls`
/// (one line per call, written with a single `write`, so concurrent calls never interleave)
/// before running its body.
pub struct FakeTools {
    pub dir: TempDir,
}

impl FakeTools {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where the fake `name` lives (whether or not it was written).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the fake `name` with a shell `body` run after the arguments are recorded.
    /// `$STATE` in the body is a directory the script may keep state in.
    pub fn tool(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        let calls = self.dir.path().join(format!("{name}.calls"));
        let script = format!(
            "#!/bin/sh\n\
             STATE='{state}'\n\
             sep=$(printf '\\037'); line=''; first=1\n\
             for a in \"$@\"; do if [ $first = 1 ]; then first=0; else line=\"$line$sep\"; fi; line=\"$line$a\"; done\n\
             printf '%s\\n' \"$line\" >> '{calls}'\n\
             {body}\n",
            state = self.dir.path().display(),
            calls = calls.display(),
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, script).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// The argument lists the fake `name` was called with, in order.
    pub fn calls(&self, name: &str) -> Vec<Vec<String>> {
        let calls = self.dir.path().join(format!("{name}.calls"));
        match std::fs::read_to_string(calls) {
            Ok(text) => text
                .lines()
                .map(|line| {
                    if line.is_empty() {
                        Vec::new()
                    } else {
                        line.split(SEP).map(ToOwned::to_owned).collect()
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A config whose binaries are this dir's fakes (written or not).
    pub fn config(&self) -> OpsConfig {
        let mut config = OpsConfig::default();
        config.binaries.systemctl = self.path("systemctl");
        config.binaries.journalctl = self.path("journalctl");
        config.binaries.docker = self.path("docker");
        config.binaries.ollama = self.path("ollama");
        config.command_timeout_secs = 10;
        config
    }
}

/// Absolute path of a fixture file.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// `cat FIXTURE` as a shell command.
pub fn cat(relative: &str) -> String {
    format!("cat '{}'", fixture(relative).display())
}

/// `cat FIXTURE >&2` as a shell command.
pub fn cat_err(relative: &str) -> String {
    format!("cat '{}' >&2", fixture(relative).display())
}

/// Builds `Ops` with a fresh log buffer.
pub fn ops(config: OpsConfig) -> Ops {
    Ops::new(config, LogBuffer::new(100)).unwrap()
}

/// The expected `systemctl --user show` arguments for `unit`.
pub fn show_args(unit: &str) -> Vec<String> {
    [
        "--user",
        "show",
        unit,
        "--property=LoadState,ActiveState,SubState,UnitFileState,Description,MainPID,Result,ExecMainStatus",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Validates `value` against a component schema of the project's OpenRPC document.
pub fn assert_matches_spec(component: &str, value: &serde_json::Value) {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/flynn.openrpc.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let schema = serde_json::json!({
        "$ref": format!("#/components/schemas/{component}"),
        "components": spec["components"],
    });
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{component} does not match the spec: {errors:?}\n{value:#}"
    );
}
