//! Generation from the Flynn OpenRPC spec (`spec/flynn.openrpc.json`).
//!
//! - [`spec`] parses the document and checks the conventions generation relies on.
//! - [`rust`] writes the Rust included by the `flynn-protocol` crate at build time.
//! - [`typescript`] writes the TypeScript client's generated module.
//! - [`summary`] renders a readable protocol summary (snapshot-tested).
//! - [`validators`] writes each method's params schema into the generated crate (one source
//!   for the wire runtime's params checks and conformance's).
//! - [`json_schema`] writes `schemars::JsonSchema` for the spec's string enums (feature
//!   `schemars` of the generated crate).
//! - [`diff`] classifies the changes between two versions of the spec.
//!
//! The `flynn-codegen` command (package `flynn-codegen` in `codegen/`) wraps these functions; it
//! lives in its own package so that `flynn-protocol`'s build script, which depends on this library
//! alone, compiles no command-line parser. The snapshot tests of what this library writes live
//! there too (`cargo test -p flynn-codegen`).

pub mod diff;
pub mod json_schema;
pub mod names;
pub mod refs;
pub mod rust;
pub mod spec;
pub mod summary;
pub mod typescript;
pub mod validators;

pub use spec::{Spec, SpecError};
