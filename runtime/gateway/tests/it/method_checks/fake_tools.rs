//! The fake `systemctl`, `docker`, `journalctl` and `ollama` of `flynn-test-support` (which
//! replay the recorded outputs in `runtime/ops/tests/fixtures`), and the `[ops.binaries]`
//! configuration pointing the gateway at them.

// Each test binary that includes this module uses part of it.
#[allow(unused_imports)]
pub use flynn_test_support::{FakeTools, cat, cat_err, ops_fixture as fixture, show_args, strings};

/// Writes the gateway configuration that points at a [`FakeTools`] dir.
pub trait OpsBinaries {
    /// `[ops.binaries]` pointing at this dir's fakes (written or not).
    fn binaries_toml(&self) -> String;
}

impl OpsBinaries for FakeTools {
    fn binaries_toml(&self) -> String {
        format!(
            "[ops.binaries]\nsystemctl = {}\njournalctl = {}\ndocker = {}\nollama = {}\n",
            super::toml_str(&self.path("systemctl").display().to_string()),
            super::toml_str(&self.path("journalctl").display().to_string()),
            super::toml_str(&self.path("docker").display().to_string()),
            super::toml_str(&self.path("ollama").display().to_string()),
        )
    }
}
