//! Fake `systemctl`, `docker`, `journalctl` and `ollama`: shell scripts in a temp dir that
//! record their arguments and print the real recorded output kept in
//! `runtime/ops/tests/fixtures` (see its README for where each file comes from).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Argument separator in the call logs (ASCII unit separator: never in an argument).
const SEP: char = '\u{1f}';

/// A temp dir of fake executables. Each script appends its arguments to `<name>.calls` (one
/// line per call, one `printf`, so concurrent calls do not interleave) and then runs its body.
pub struct FakeTools {
    pub dir: tempfile::TempDir,
}

impl FakeTools {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir for fake tools"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where the fake `name` lives (whether or not it was written).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the fake `name`; `body` runs after the arguments are recorded. `$STATE` is a
    /// directory the script may keep state in.
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
        std::fs::write(&tmp, script).expect("write fake tool");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .expect("make fake tool executable");
        std::fs::rename(&tmp, &path).expect("install fake tool");
        path
    }

    /// The argument lists `name` was called with, in order.
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

    /// `[ops.binaries]` pointing at this dir's fakes (written or not).
    pub fn binaries_toml(&self) -> String {
        format!(
            "[ops.binaries]\nsystemctl = {}\njournalctl = {}\ndocker = {}\nollama = {}\n",
            super::toml_str(&self.path("systemctl").display().to_string()),
            super::toml_str(&self.path("journalctl").display().to_string()),
            super::toml_str(&self.path("docker").display().to_string()),
            super::toml_str(&self.path("ollama").display().to_string()),
        )
    }
}

/// Absolute path of a recorded fixture of the ops crate.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ops/tests/fixtures")
        .join(relative)
}

/// `cat FIXTURE` as a shell command.
pub fn cat(relative: &str) -> String {
    let path = fixture(relative);
    assert!(path.is_file(), "fixture {} exists", path.display());
    format!("cat '{}'", path.display())
}

/// `cat FIXTURE >&2` as a shell command.
pub fn cat_err(relative: &str) -> String {
    format!("{} >&2", cat(relative))
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The `systemctl --user show` arguments the ops crate uses for `unit`.
pub fn show_args(unit: &str) -> Vec<String> {
    strings(&[
        "--user",
        "show",
        unit,
        "--property=LoadState,ActiveState,SubState,UnitFileState,Description,MainPID,Result,ExecMainStatus",
    ])
}
