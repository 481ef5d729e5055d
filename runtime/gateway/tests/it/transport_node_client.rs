//! The protocol document's example client (`FlynnClient`, copied verbatim into
//! tests/node-example/flynn-client.js) run in Node with the `ws` package against the daemon
//! binary, as part of `cargo test`: this runs `node --test example.test.js` there with
//! FLYNN_GATEWAY_BIN pointing at the binary cargo built for these tests.
//!
//! Needs Node 20+ on PATH and the folder's `ws` dependency; when `node_modules` is missing it
//! runs `npm ci --offline` (from the npm cache, no network) and otherwise says what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-example")
}

fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/ws/package.json").is_file() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--offline", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status();
    assert!(
        matches!(status, Ok(s) if s.success())
            && dir.join("node_modules/ws/package.json").is_file(),
        "the Node example needs its `ws` dependency: run `npm ci` in {} (got {status:?})",
        dir.display()
    );
}

#[test]
fn protocol_document_example_client_runs_in_node() {
    let dir = example_dir();
    let version = Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        other => panic!(
            "Node 20+ must be on PATH to run the protocol document's example client: {other:?}"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "Node 20+ is needed (node:test), found {version}"
    );
    ensure_node_modules(&dir);

    let output = Command::new("node")
        .args(["--test", "example.test.js"])
        .current_dir(&dir)
        .env("FLYNN_GATEWAY_BIN", env!("CARGO_BIN_EXE_flynn-gateway"))
        .env_remove("FLYNN_SERVER_TOKEN")
        .output()
        .expect("run node --test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node --test example.test.js failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("# pass 2"),
        "both Node tests ran and passed:\n{stdout}"
    );
}
