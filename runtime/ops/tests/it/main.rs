//! The integration tests of flynn-ops, in one binary: one module per area, `common` shared by
//! them. One binary instead of one per file links the crate and its dependencies once, which is
//! most of the build time and of the disk space the tests take.

mod common;

mod config;
mod docker_dependencies;
mod local_backends;
mod masking;
mod observability;
mod protocol_shapes;
mod service_logs;
