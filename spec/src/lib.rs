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
//! - [`wire`]: frame parsing, replies, events and call plumbing: the hand-written crate
//!   `flynn-wire`, bound here to this protocol's types.

mod bindings;

#[allow(clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/flynn_protocol.rs"));
}

pub use generated::*;

/// The spec document, as served by `rpc.discover`.
pub const SPEC_JSON: &str = include_str!("../flynn.openrpc.json");

/// The wire runtime (crate `flynn-wire`), with its generic items bound to this protocol.
pub mod wire {
    pub use flynn_wire::*;

    /// A parsed request frame of this protocol; `params` borrows from the frame's text.
    pub type Request<'a> = flynn_wire::Request<'a, crate::Method>;

    /// A call whose events ([`crate::Event`]) are read one by one before its reply `R`.
    pub type Streaming<R> = flynn_wire::Streaming<R, crate::Event>;

    /// Parses one text frame: invalid JSON is -1 (id null); a frame that is not an object, has
    /// no or a non-string method, a bad id, a bad `jsonrpc` or non-object params is -2 naming
    /// the field; an unknown method is -3.
    pub fn parse_request(text: &str) -> Result<Request<'_>, Rejected> {
        flynn_wire::parse_request(text)
    }

    /// The careful path of [`parse_request`]. Public for the test that holds the fast path to
    /// it.
    #[doc(hidden)]
    pub fn parse_request_slow(text: &str) -> Result<Request<'_>, Rejected> {
        flynn_wire::parse_request_slow(text)
    }
}

/// A tokio-tungstenite transport for the generated [`Client`], offering [`SUBPROTOCOL`].
#[cfg(feature = "ws-client")]
pub mod ws_client {
    pub use flynn_wire::ws::ConnectOptions;

    /// The subprotocol constants, generated from the spec's `x-http.auth.browserSubprotocol`.
    pub use crate::{BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL};

    /// This protocol's subprotocol names, for `flynn-wire`'s transports.
    #[derive(Debug)]
    pub enum Flynn {}

    impl flynn_wire::ws::WsProtocol for Flynn {
        const SUBPROTOCOL: &'static str = crate::SUBPROTOCOL;
        const BEARER_SUBPROTOCOL_PREFIX: &'static str = crate::BEARER_SUBPROTOCOL_PREFIX;
    }

    /// A connected WebSocket transport. Dropping it closes the connection.
    pub type WsTransport = flynn_wire::ws::WsTransport<Flynn>;

    /// A transport that reconnects and resumes agent turns (decision resumable-runs).
    pub type ResumingWsTransport = flynn_wire::ws::ResumingWsTransport<Flynn>;

    /// The `Sec-WebSocket-Protocol` entry carrying `token`.
    pub fn bearer_subprotocol(token: &str) -> String {
        flynn_wire::ws::bearer_subprotocol::<Flynn>(token)
    }
}
