//! Test support. The test gateway (a real gateway on a free loopback port with its own data
//! directory), the raw WebSocket client, the typed client and in-process dispatch live in
//! `flynn_test_support::gateway` (re-exported here) so other crates' tests can start a gateway
//! too. What stays here is specific to this crate's tests:
//!
//! - [`agent`]: a connection whose frames a background task logs with arrival times, and the
//!   helpers that hold a run at a known point; only the agent tests need that model.
//! - [`platform`]: fake chat platforms (JWKS, token endpoint, message API) and signed tokens.
//! - [`raw_http`]: HTTP requests written byte by byte, for the HTTP front's own tests.
//! - [`process`]: the daemon binary as a process (`CARGO_BIN_EXE_flynn-gateway` exists only in
//!   this crate's tests).
//! - [`alone`]: reruns a test in a process of its own (this binary's own filter).
#![allow(dead_code)]

pub mod agent;
pub mod alone;
pub mod platform;
pub mod process;
pub mod raw_http;

#[allow(unused_imports)] // each name is used by some test modules, not all
pub use flynn_test_support::gateway::{
    Dispatcher, FRAME_TIMEOUT, InProcessClient, TestClient, TestGateway, Ws, config_path, rpc_error,
};

/// A session id for the typed client's params (`types::SessionId` checks the spec's rule).
pub fn sid(id: impl AsRef<str>) -> flynn_protocol::types::SessionId {
    let id = id.as_ref();
    id.parse()
        .unwrap_or_else(|e| panic!("{id:?} is a valid session id: {e}"))
}
