//! The Flynn gateway protocol in Rust, generated at build time from `spec/flynn.openrpc.json`.
//!
//! - [`types`]: one serde type per schema, and `<Method>Params` per method.
//! - [`methods`], [`events`], [`Method`], [`ErrorCode`]: names and codes.
//! - [`Handler`] and [`dispatch`]: the gateway side. Implement every method of `Handler`,
//!   returning [`wire::Reply::ready`] when the answer is at hand and [`wire::Reply::later`]
//!   (a future) when it has to wait.
//! - [`Event`], [`Client`]: the client side, over any [`wire::Transport`].
//! - [`wire`]: frame parsing, replies, events and call plumbing (hand-written).

pub mod wire;
#[cfg(feature = "ws-client")]
pub mod ws_client;

#[allow(clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/flynn_protocol.rs"));
}

pub use generated::*;

/// The spec document, as served by `rpc.discover`.
pub const SPEC_JSON: &str = include_str!("../flynn.openrpc.json");
