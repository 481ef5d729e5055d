//! Chat channels: Microsoft Teams (Bot Framework), Google Chat, BlueBubbles (iMessage) and
//! Gmail push notifications reach the agent through HTTP callbacks that bypass the gateway
//! token, each checked the way its platform signs it.
//!
//! Every callback goes through the same flow: the platform module authenticates the request
//! and parses the platform's JSON into a [`ChannelMessage`] (dropping the bot's own messages
//! and events that are not messages), then [`accept`] deduplicates it by the platform's id
//! ([`dedupe`]), records the sender's presence, lets it through the pairing gate
//! ([`pairing`]), and starts a turn on the sender's session (`<channel>:<conversation>`)
//! whose answer goes back through the platform's [`Replier`]. The HTTP answer never waits for
//! the model (Google Chat's synchronous window aside): platforms retry slow callbacks.
//!
//! Modules: [`config`] (`[channels.*]`), [`jwt`] (JWKS-backed RS256 checks), [`routes`] (the
//! warp filters and their JSON errors), one module per platform.

pub mod bluebubbles;
pub mod callback;
pub mod config;
pub mod dedupe;
pub mod gmail;
pub mod google_chat;
pub mod jwt;
pub mod message;
pub mod oauth;
pub mod pairing;
pub mod routes;
pub mod state;
pub mod teams;
pub mod wrong_codes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use config::ChannelsConfig;
pub use message::{Channel, ChannelMessage, allowed};
pub use state::ChannelState;

use crate::gateway::{Gateway, now_ms};
use crate::inbox::{Discard, InboundMessage, start_turn_from};

/// Largest callback body accepted, in bytes (platform events are a few KiB).
pub const MAX_EVENT_BYTES: u64 = 256 * 1024;
/// Longest message text handed to the agent, in bytes; longer text is cut at a char boundary.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Why a callback was refused; each maps to an HTTP status (see [`routes`]).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "the {0} channel is not enabled; set `channels.{0}.enabled = true` (and its keys) to use this route"
    )]
    Disabled(&'static str),
    #[error(transparent)]
    Token(#[from] jwt::JwtError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the request body is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// Sends a text back through the platform (errors are logged there, never raised).
pub type Replier = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What became of an accepted callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The platform redelivered an id already accepted: nothing was done.
    Duplicate,
    /// The message is a turn of the agent; its answer goes through the replier.
    Turn,
    /// The sender is not (yet) allowed: the pairing gate answers it (through the replier).
    Gated,
    /// The sender is not allowed and gets no answer (asked before, or not on an allow-list).
    Ignored,
}

/// The shared flow after a platform module parsed a message: dedupe, presence, pairing gate,
/// turn. `allow` is the channel's allow-list; `pairing` whether unknown senders may pair.
pub async fn accept(
    gateway: &Arc<Gateway>,
    message: ChannelMessage,
    allow: &[String],
    pairing: bool,
    reply: Replier,
) -> Result<Accepted, ChannelError> {
    let channel = message.channel.name();
    let unavailable = |e| store_unavailable(channel, e);
    if !dedupe::first_delivery(gateway, message.channel, &message.delivery_id)
        .await
        .map_err(unavailable)?
    {
        tracing::debug!(channel, "redelivery ignored");
        return Ok(Accepted::Duplicate);
    }
    let outcome = gate_and_start(gateway, &message, allow, pairing, reply).await;
    if let Err(ChannelError::Unavailable(_)) = &outcome {
        // The platform retries a 503: its redelivery must not be taken for a duplicate.
        if let Err(e) = dedupe::forget(gateway, message.channel, &message.delivery_id).await {
            tracing::warn!(channel, error = %e, "could not forget a delivery that was not taken");
        }
    }
    outcome
}

/// A store failure: 503, so the platform retries.
fn store_unavailable(channel: &str, error: flynn_store::StoreError) -> ChannelError {
    tracing::warn!(channel, %error, "channel callback: store failure");
    ChannelError::Unavailable("the gateway could not record the message; retry later".into())
}

/// After dedupe: presence, the pairing gate, and the turn.
async fn gate_and_start(
    gateway: &Arc<Gateway>,
    message: &ChannelMessage,
    allow: &[String],
    pairing: bool,
    reply: Replier,
) -> Result<Accepted, ChannelError> {
    let channel = message.channel.name();
    let unavailable = |e| store_unavailable(channel, e);
    let gate = pairing::gate(gateway, message, allow, pairing)
        .await
        .map_err(unavailable)?;
    if gate != pairing::Gate::Pass {
        // A turn's message is counted in presence when it is stored (under the sender, see
        // `start_turn_from`); a gated one here.
        gateway
            .store
            .record_presence(
                channel,
                &message.sender_id,
                message.sender_name.as_deref(),
                now_ms(),
            )
            .await
            .map_err(unavailable)?;
    }
    match gate {
        pairing::Gate::Pass => {}
        pairing::Gate::Answer(text) => {
            tokio::spawn(reply(text));
            return Ok(Accepted::Gated);
        }
        pairing::Gate::Ignore => return Ok(Accepted::Ignored),
    }
    let session_id = format!("{channel}:{}", message.conversation);
    let started = start_turn_from(
        gateway,
        InboundMessage {
            session_id,
            text: cut(&message.text, MAX_TEXT_BYTES).to_owned(),
            sender_name: message.sender_name.clone(),
            may_use_tools: false,
        },
        Some(message.sender_id.clone()),
        Arc::new(Discard),
    )
    .await
    .map_err(|e| ChannelError::BadRequest(e.message))?;
    tokio::spawn(async move {
        match started.reply.await {
            Ok(Ok(result)) if !result.content.trim().is_empty() => reply(result.content).await,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(channel, session = %started.session_id, error = %error.message, "channel turn failed");
                reply("Sorry, I could not answer that; please try again later.".to_owned()).await;
            }
            Err(_) => tracing::warn!(channel, "channel turn ended without a reply"),
        }
    });
    Ok(Accepted::Turn)
}

/// `text` cut to at most `max` bytes at a char boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
