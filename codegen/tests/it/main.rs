//! The integration tests of flynn-codegen, in one binary: `diff` (spec compatibility) and
//! `snapshots` (everything generated from the real spec; `cargo insta review`). The snapshot
//! files in `snapshots/` are named after the module path (`it__snapshots__*.snap`).

mod diff;
mod snapshots;
