//! Generation from the Flynn OpenRPC spec (`spec/flynn.openrpc.json`).
//!
//! - [`spec`] parses the document and checks the conventions generation relies on.
//! - [`rust`] writes the Rust included by the `flynn-protocol` crate at build time.
//! - [`typescript`] writes the TypeScript client's generated module.
//! - [`summary`] renders a readable protocol summary (snapshot-tested).
//! - [`diff`] classifies the changes between two versions of the spec.

pub mod diff;
pub mod names;
pub mod rust;
pub mod spec;
pub mod summary;
pub mod typescript;

pub use spec::{Spec, SpecError};
