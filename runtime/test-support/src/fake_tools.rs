//! Fake executables (`systemctl`, `docker`, `journalctl`, `ollama`, ...): shell scripts in a temp
//! dir that record their arguments and then run a body, typically printing a recorded fixture.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Argument separator in the call logs (ASCII unit separator: never in an argument).
const SEP: char = '\u{1f}';

/// A temp dir of fake executables. Each script appends its arguments to `<name>.calls` (one
/// line per call, one `printf`, so concurrent calls do not interleave) and then runs its body.
pub struct FakeTools {
    /// The directory; removed when this value drops.
    pub dir: tempfile::TempDir,
}

impl Default for FakeTools {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeTools {
    /// An empty temp dir of fakes.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir for fake tools"),
        }
    }

    /// The directory of the fakes.
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
}
