//! The integration tests of flynn-conformance, in one binary: one module per area, `support`
//! shared by them. One binary instead of one per file links the conformance crate and the
//! gateway it runs against once, which is most of the tests' build time and disk space.

mod support;

mod client_side;
mod record;
mod repository;
mod suite;
mod wrong_server;
