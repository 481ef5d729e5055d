//! The HTTP side shared by the OpenAI-compatible and Anthropic providers: the client (TLS with
//! rustls and the `ring` provider), the streaming driver with its timeouts, and the mapping of
//! HTTP failures to [`crate::ProviderError`].

mod client;
mod errors;
mod stream;

pub(crate) use client::{HttpSettings, base_string, build_client, normalize_base_url};
pub use client::{web_client, web_client_builder};
pub(crate) use errors::excerpt;
pub use errors::retry_after;
pub(crate) use stream::{Flow, SseHandler, run_sse_call};
