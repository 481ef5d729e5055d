//! The Rust integration tests of flynn-protocol, in one binary (one module per area): one link
//! of the crate and its dependencies instead of one per file. The Node tests of the spec
//! (`*.test.mjs`) stay in `tests/`. proptest keeps the failing cases it found in
//! `tests/proptest-regressions/dispatch.txt` (its place for a test crate with a `main.rs`).

mod dispatch;
mod tool_error;
