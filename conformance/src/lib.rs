//! The Flynn gateway protocol's conformance suite: transcripts any gateway and any client can
//! be held to (see README.md).
//!
//! - [`transcript`]: the JSONL transcript format; [`pattern`]: expected values and matchers.
//! - [`spec`]: the spec's schemas as validators; [`wirecheck`]: the wire rules every frame obeys.
//! - [`run`]: plays the client side against a gateway; [`serve`]: plays the server side to a
//!   client; [`record`]: a proxy that writes a live exchange as a transcript.
//! - [`validate`]: static checks of transcripts; [`coverage`]: what the transcripts cover.
//! - [`http_step`]: the `http` step; [`routes`]: the spec's `x-http` routes and the rules an HTTP
//!   answer is held to; [`run_http`] and [`http_client`]: how `run` plays an `http` step.
//! - [`report`]: text, JSON and JUnit renderings of any mode's results.

pub mod coverage;
pub mod coverage_exceptions;
pub mod coverage_http;
mod holes;
pub mod http_client;
pub mod http_step;
pub mod path;
pub mod pattern;
pub mod record;
pub mod report;
pub mod routes;
pub mod run;
pub mod run_http;
pub mod schema;
pub mod serve;
pub mod spec;
pub mod transcript;
pub mod validate;
pub mod validate_http;
pub mod volatile;
pub mod wirecheck;
pub mod ws;
