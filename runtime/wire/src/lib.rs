//! The Flynn gateway's wire runtime, hand-written: the rules the generated `flynn-protocol`
//! relies on. Request ids ([`ids`]), frame parsing with the -1/-2/-3 classification
//! ([`parse`]), params decoding and checking that names the failing field ([`params`]), reply
//! and event frames ([`replies`], [`events`]), the per-call context handed to handlers
//! ([`call`]), and the client-side call plumbing ([`client`], and a WebSocket transport in
//! `ws` with the `ws-client` feature).
//!
//! Everything per-method is generated in `flynn-protocol`, which implements this crate's
//! [`protocol`] traits for its `Method`, `Event` and `ErrorCode` and re-exports this crate as
//! `flynn_protocol::wire` (with `Request`, `Streaming` and `parse_request` bound to its types).

pub mod call;
pub mod client;
pub mod error;
pub mod events;
pub mod ids;
mod json_text;
pub mod params;
pub mod parse;
pub mod protocol;
pub mod replies;
pub mod request;
pub mod shared_str;
#[cfg(test)]
mod testing;
#[cfg(feature = "ws-client")]
pub mod ws;

pub use call::Call;
pub use client::{ClientError, EventFrame, PendingCall, Streaming, Transport, to_params};
pub use error::RpcError;
pub use events::{EventEmitter, EventJson, EventSink, RunTag, event_frame, run_event_frame};
pub use ids::RequestId;
pub use params::decode_params;
pub use parse::{MAX_BATCH_REQUESTS, Rejected, batch_entries, parse_request, parse_request_slow};
pub use protocol::{ParamsValidators, WireCode, WireEvent, WireMethod, codes};
pub use replies::{Dispatched, Reply, ReplyFuture, encode_reply, error_reply, finish};
pub use request::Request;
pub use shared_str::SharedStr;
