//! Model providers of the Flynn gateway behind one streaming trait: the embedded default,
//! OpenAI-compatible chat completions and Anthropic Messages.
//!
//! The agent loop holds `Arc<dyn Provider>` (one per model tier, see [`ModelTiers`]), sends a
//! [`ChatRequest`] and reads [`StreamEvent`]s from the returned [`EventReceiver`], whose
//! `recv` drives the call in the caller's own task:
//!
//! ```no_run
//! # async fn demo() -> Result<(), flynn_models::ProviderError> {
//! use flynn_models::{ChatMessage, ChatRequest, CancellationToken, ProviderConfig, build_provider, collect};
//! let provider = build_provider(&ProviderConfig::default())?; // the embedded model
//! let request = ChatRequest { messages: vec![ChatMessage::user("hello")], ..ChatRequest::default() };
//! let answer = collect(provider.stream(request, CancellationToken::new())).await?;
//! assert_eq!(answer.text, "You said: hello");
//! # Ok(()) }
//! ```
//!
//! Cancelling the token (or dropping the receiver) drops the in-flight HTTP response, closing
//! its connection, and the stream ends with [`ProviderError::Cancelled`].

mod anthropic;
mod config;
mod embedded;
mod error;
mod http;
mod openai;
mod provider;
mod registry;
mod sse;
mod types;

pub use anthropic::{
    ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_DEFAULT_CONTEXT_WINDOW,
    ANTHROPIC_DEFAULT_MAX_OUTPUT_TOKENS, ANTHROPIC_VERSION, AnthropicProvider,
};
pub use config::{
    DEFAULT_TIER, ModelsConfig, ProviderConfig, ProviderKind, REDACTED, Secret, Timeouts,
};
pub use embedded::{
    EMBEDDED_DEFAULT_CONTEXT_WINDOW, EMBEDDED_MODEL, EmbeddedProvider, GIF_1X1_BASE64,
    MAX_DELAY_MS, MAX_LONG_WORDS, PNG_1X1_BASE64, WORDS_PER_CHUNK,
};
pub use error::ProviderError;
pub use http::{retry_after, web_client, web_client_builder};
pub use openai::{OPENAI_DEFAULT_BASE_URL, OPENAI_DEFAULT_CONTEXT_WINDOW, OpenAiProvider};
pub use provider::{CollectedResponse, EventReceiver, Provider, collect};
pub use registry::{ANTHROPIC_KEY_ENV, ModelTiers, build_provider};
pub use tokio_util::sync::CancellationToken;
pub use types::{
    ChatMessage, ChatRequest, IMAGE_TOKEN_ESTIMATE, ImagePart, Role, StreamEvent, ToolCall,
    ToolSpec, estimate_message_tokens, estimate_request_tokens, estimate_request_tokens_after,
    estimate_text_message_tokens, estimate_text_message_tokens_of_chars, estimate_tokens,
    stop_reason,
};
