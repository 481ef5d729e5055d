//! The integration tests of flynn-models, in one binary: one module per area, `support` shared by
//! them. One binary instead of one per file links the crate and its dependencies once, which is
//! most of the build time and of the disk space the tests take.

mod support;

mod anthropic;
mod embedded;
mod openai;
mod tls;
