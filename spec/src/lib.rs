//! The Flynn gateway protocol in Rust, generated at build time from `spec/flynn.openrpc.json`.
//!
//! - [`types`]: one serde type per schema, and `<Method>Params` per method.
//! - [`methods`], [`events`], [`Method`], [`ErrorCode`]: names and codes.
//! - The gateway side: one handler trait per tag of the spec (`components.tags`):
//!   [`SystemMethods`], [`InsightsMethods`], [`OperationsMethods`], [`NodesMethods`],
//!   [`SessionsMethods`], [`AgentMethods`], [`CanvasMethods`], [`ToolsMethods`],
//!   [`ConfigMethods`], [`PairingMethods`], [`RpcMethods`], each over [`HandlerBase`] (the
//!   `Connection` type and the access checks [`dispatch`] makes). [`Handler`] is their
//!   combination, implemented automatically (a blanket impl) for any type that implements them
//!   all, so an implementation is one `impl HandlerBase` plus one `impl <Tag>Methods` per tag,
//!   each in the module of its concern, and never names `Handler`. A method returns
//!   [`wire::Reply::ready`] when the answer is at hand and [`wire::Reply::later`] (a future)
//!   when it has to wait. [`Method::tag`] names a method's tag; `for_each_tag!` lists the traits
//!   with their methods. Read the generated code with `cargo run -p flynn-codegen -- rust`.
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
