//! Test helpers shared by more than one crate's tests (a dev-dependency only, never published).
//!
//! - [`FakeTools`]: fake executables in a temp dir that record their arguments and run a shell
//!   body, used by flynn-ops' tests and by the gateway's operator-method tests.
//! - [`ops_fixture`], [`cat`], [`cat_err`]: the recorded outputs of the real tools kept in
//!   `runtime/ops/tests/fixtures` (its README says where each comes from), as paths or as the
//!   shell commands a fake prints them with.
//!
//! Test code: it panics with a message instead of returning errors.

mod fake_tools;

pub use fake_tools::FakeTools;

use std::path::{Path, PathBuf};

/// Absolute path of a recorded fixture under `runtime/ops/tests/fixtures`.
pub fn ops_fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ops/tests/fixtures")
        .join(relative)
}

/// `cat FIXTURE` as a shell command (the fixture must exist).
pub fn cat(relative: &str) -> String {
    let path = ops_fixture(relative);
    assert!(path.is_file(), "fixture {} exists", path.display());
    format!("cat '{}'", path.display())
}

/// `cat FIXTURE >&2` as a shell command.
pub fn cat_err(relative: &str) -> String {
    format!("{} >&2", cat(relative))
}

/// Owned strings from string literals (expected argument lists).
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The `systemctl --user show` arguments flynn-ops uses for `unit`.
pub fn show_args(unit: &str) -> Vec<String> {
    strings(&[
        "--user",
        "show",
        unit,
        "--property=LoadState,ActiveState,SubState,UnitFileState,Description,MainPID,Result,ExecMainStatus",
    ])
}
