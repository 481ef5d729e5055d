//! Test helpers shared by more than one crate's tests (a dev-dependency only, never published).
//!
//! - `gateway` (feature `gateway`): the test gateway, a real daemon on a free 127.0.0.1 port
//!   with its own temp directory; the raw WebSocket client, the generated typed client connected
//!   to it in one call, and an in-process dispatch helper. Used by the gateway's integration
//!   tests (`runtime/gateway/tests/it`) only; see the module for the dev-dependency cycle this
//!   makes and why the gateway's unit tests cannot use it.
//! - `model_server` (feature `model-server`): scripted fake model servers replaying a
//!   provider's stream format and errors, for flynn-models' tests and the gateway's agent tests.
//! - [`FakeTools`]: fake executables in a temp dir that record their arguments and run a shell
//!   body, used by flynn-ops' tests and by the gateway's operator-method tests.
//! - [`ops_fixture`], [`cat`], [`cat_err`]: the recorded outputs of the real tools kept in
//!   `runtime/ops/tests/fixtures` (its README says where each comes from), as paths or as the
//!   shell commands a fake prints them with.
//!
//! The features keep each user's build small: flynn-ops' tests, which use [`FakeTools`] only,
//! compile neither the gateway nor tokio.
//!
//! Test code: it panics with a message instead of returning errors.

mod fake_tools;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "model-server")]
pub mod model_server;

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
