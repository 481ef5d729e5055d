//! Benchmarks of the gateway's WebSocket hot path (`system.info`) against a minimal
//! tokio-tungstenite server doing the same work: throughput and latency under load, and server
//! memory per idle connection. Run with `cargo run --release -p flynn-bench -- all`; see
//! BENCHMARKS.md for the figures and how they were taken.
//!
//! - [`raw_server`]: the baseline server.
//! - [`gateway_server`]: the real gateway, started in-process.
//! - [`child`]: either server in its own (pinned) process.
//! - [`client`], [`load`], [`idle`]: the load generator and the idle-connection test.
//! - [`procfs`], [`pin`]: reading a process's memory/CPU, pinning to cores.
//! - [`suite`]: the runs side by side and their tables.

pub mod agent_suite;
pub mod child;
pub mod client;
mod error;
pub mod gateway_server;
pub mod history;
pub mod idle;
pub mod idle_large;
pub mod load;
pub mod pin;
pub mod procfs;
pub mod raw_server;
pub mod sse_server;
pub mod suite;
pub mod turns;

pub use error::BenchError;
