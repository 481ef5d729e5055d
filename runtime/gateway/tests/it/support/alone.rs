//! One test in a process of its own. All the gateway's integration tests share one binary and so
//! one process; a test that asserts on process-wide state other tests move (the metrics registry
//! is one per process) runs again, alone, in a child process of the same binary.

use tokio::process::Command;

/// Names the one test a child process runs (set on the child only).
const ALONE: &str = "FLYNN_GATEWAY_IT_ALONE";

/// Whether the caller runs its body in this process. `module` is the caller's `module_path!()`
/// and `test` its function name. In a child started for this test: `true`. Otherwise this runs
/// the test binary again with only this test, fails unless exactly it ran and passed, and
/// returns `false` (the caller returns at once).
pub async fn in_own_process(module: &str, test: &str) -> bool {
    // libtest names a test by its path without the crate: `http_metrics::name`.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{test}");
    if std::env::var(ALONE).is_ok_and(|alone| alone == name) {
        return true;
    }
    let binary = std::env::current_exe().expect("the test binary's own path");
    let output = Command::new(binary)
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE, &name)
        .output()
        .await
        .expect("the test binary starts again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{name}` in a process of its own failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed;"),
        "`{name}` ran, alone, in the child process:\n{stdout}\n{stderr}"
    );
    false
}
