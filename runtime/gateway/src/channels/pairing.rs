//! The pairing gate: who may reach the agent through a channel.
//!
//! A sender on the channel's allow-list, or paired earlier, passes. Anyone else gets one
//! answer asking for a pairing code (once per `channels.ask_again_after_secs`, remembered in
//! the store; other messages are dropped, never shown to the agent). A message that is a code
//! made by `pairing.generate {channel}` for this channel pairs the sender: the code is used up
//! and the sender persisted in one store transaction, and the answer confirms it. Wrong codes
//! are counted per sender: after `channels.wrong_code_limit` within
//! `channels.wrong_code_window_secs` the sender is told to wait, and its codes are not even
//! tried until the window passes. Gmail has no sender to talk to: allow-list only.

use std::time::Duration;

use flynn_store::StoreError;

use super::message::{ChannelMessage, allowed};
pub use super::wrong_codes::{MAX_TRACKED_SENDERS, WrongCodes};
use crate::gateway::{Gateway, now_ms};
use crate::handlers::pairing::CODE_LENGTH;

/// What the gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The message is a turn.
    Pass,
    /// Answer the sender with this text; the message is not a turn.
    Answer(String),
    /// Drop the message silently.
    Ignore,
}

pub async fn gate(
    gateway: &Gateway,
    message: &ChannelMessage,
    allow: &[String],
    pairing: bool,
) -> Result<Gate, StoreError> {
    let channel = message.channel.name();
    let sender = message.sender_id.as_str();
    if allowed(allow, sender) || gateway.store.is_sender_paired(channel, sender).await? {
        return Ok(Gate::Pass);
    }
    if !pairing {
        tracing::info!(
            channel,
            "a message from a sender not on the allow-list was ignored"
        );
        return Ok(Gate::Ignore);
    }
    let config = gateway.config();
    let limits = &config.channels;
    let window = Duration::from_secs(limits.wrong_code_window_secs);
    let key = (channel.to_owned(), sender.to_owned());
    let now = now_ms();
    if let Some(code) = as_code(&message.text) {
        if let Some(wait) =
            gateway
                .channels
                .wrong_codes
                .locked(&key, limits.wrong_code_limit, window)
        {
            return Ok(Gate::Answer(wait_text(wait)));
        }
        let name = message.sender_name.as_deref();
        if gateway
            .store
            .pair_sender_with_code(channel, sender, name, &code, now)
            .await?
        {
            gateway.channels.wrong_codes.clear(&key);
            tracing::info!(channel, "a sender paired with a pairing code");
            return Ok(Gate::Answer(
                "Paired: you can talk to the assistant here now.".to_owned(),
            ));
        }
        let left = gateway
            .channels
            .wrong_codes
            .fail(key, limits.wrong_code_limit, window);
        return Ok(Gate::Answer(if left == 0 {
            wait_text(window)
        } else {
            format!(
                "That pairing code is not valid for this channel or has expired; ask the owner for a new one ({left} tries left)."
            )
        }));
    }
    let again_ms =
        i64::try_from(limits.ask_again_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if gateway
        .store
        .note_pairing_asked(
            channel,
            sender,
            message.sender_name.as_deref(),
            now,
            again_ms,
        )
        .await?
    {
        return Ok(Gate::Answer(
            "Hello! I only talk to people I know. Ask the owner of this assistant for a pairing code and send it here as a message.".to_owned(),
        ));
    }
    Ok(Gate::Ignore)
}

fn wait_text(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    format!("Too many wrong pairing codes; wait {minutes} minute(s) and try again.")
}

/// The message as a pairing code attempt (trimmed, upper-cased), if it has a code's shape:
/// one word of the code's length. Look-alike characters outside the code alphabet (0, O, 1,
/// I, L) still count as an attempt, so a mistyped code is told it is wrong.
pub fn as_code(text: &str) -> Option<String> {
    let code = text.trim().to_ascii_uppercase();
    (code.len() == CODE_LENGTH && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_recognised_by_shape() {
        assert_eq!(as_code(" abcd2345 ").as_deref(), Some("ABCD2345"));
        assert_eq!(as_code("hello there"), None);
        assert_eq!(as_code("ABC"), None);
    }
}
