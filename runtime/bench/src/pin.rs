//! Core pinning with `taskset`: each server runs alone on one core and the load generator on
//! another, so the server's throughput is measured on exactly one core and the two never
//! compete. Without `taskset` or with a single core the bench runs unpinned and says so.

use std::process::Command;

use crate::BenchError;

/// Which core does what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinning {
    pub server_core: usize,
    pub load_core: usize,
}

/// The pinning to use: server on core 0, load on core 1, when `taskset` works and the process
/// may use at least two cores.
pub fn plan(disabled: bool) -> Option<Pinning> {
    if disabled {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        tracing::warn!("only one core available: running unpinned");
        return None;
    }
    let works = Command::new("taskset")
        .arg("-p")
        .arg(std::process::id().to_string())
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        tracing::warn!("taskset is not available (install util-linux): running unpinned");
        return None;
    }
    Some(Pinning {
        server_core: 0,
        load_core: 1,
    })
}

/// Pins this process to `core`. Only threads started afterwards inherit the mask, so call
/// it before building the async runtime.
pub fn pin_this_process(core: usize) -> Result<(), BenchError> {
    let output = Command::new("taskset")
        .args([
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .output()
        .map_err(|e| BenchError::io("cannot run taskset", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BenchError::Settings(format!(
            "taskset could not pin the load generator to core {core}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
