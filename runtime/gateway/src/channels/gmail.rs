//! Gmail push notifications through a Pub/Sub push subscription: `POST /gmail/push`.
//!
//! - Trust: the push's OIDC bearer token (Google-signed, keys at `jwks_url`): issuer
//!   `https://accounts.google.com` or `accounts.google.com`, audience `audience`, `email` the
//!   configured `service_account` with `email_verified`.
//! - Body: `{"message":{"data": base64(JSON {"emailAddress","historyId"}), "messageId", ..},
//!   "subscription"}`; dedupe by `messageId`. A notification says only that the mailbox
//!   changed: the turn's message names the mailbox and the history id (fetching the mail with
//!   the Gmail API is not done here).
//! - Senders: the mailbox (`emailAddress`) must be on `allow`: there is no one to send a
//!   pairing code, so Gmail is allow-list only. Session `gmail:<address>`.
//! - Reply: none by mail. The answer is stored in the session, where `sessions.get` shows it
//!   and `agent.attach` follows the turn; the HTTP answer is 200 at once (Pub/Sub redelivers
//!   non-2xx answers).

use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;

use super::callback::{Callback, HandledResult, accepted, ignored, parse};
use super::jwt::{Expect, JwtError, KeySource, bearer};
use super::{Channel, ChannelError, ChannelMessage, Replier};
use crate::gateway::Gateway;

#[derive(Debug, Deserialize)]
pub struct Push {
    pub message: PubSubMessage,
    #[serde(default)]
    pub subscription: Option<String>,
}

/// Pub/Sub sends the id and time twice, camelCase and snake_case (both documented), so they
/// are two fields each here (serde aliases would reject the duplicate).
#[derive(Debug, Deserialize)]
pub struct PubSubMessage {
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
    #[serde(default, rename = "message_id")]
    pub message_id_snake: Option<String>,
    #[serde(default, rename = "publishTime")]
    pub publish_time: Option<String>,
    #[serde(default, rename = "publish_time")]
    pub publish_time_snake: Option<String>,
}

/// The notification Gmail publishes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub email_address: String,
    pub history_id: serde_json::Value,
}

pub async fn handle(gateway: &Arc<Gateway>, callback: Callback) -> HandledResult {
    let config = gateway.config();
    let gmail = &config.channels.gmail;
    if !gmail.enabled {
        return Err(ChannelError::Disabled(Channel::Gmail.config_key()));
    }
    let token = bearer(&callback.headers).ok_or(JwtError::Missing)?;
    let http = gateway
        .channels
        .http()
        .map_err(|e| ChannelError::Unavailable(e.to_string()))?;
    let claims = gateway
        .channels
        .gmail_keys
        .verify(
            &http,
            KeySource::Jwks(&gmail.jwks_url),
            token,
            &Expect {
                issuers: &["https://accounts.google.com", "accounts.google.com"],
                audience: &gmail.audience,
                leeway_secs: 60,
            },
        )
        .await?;
    if claims["email"] != gmail.service_account.as_str()
        || claims["email_verified"] != serde_json::json!(true)
    {
        return Err(ChannelError::Unauthorized(
            "the push token is not from the configured service account (channels.gmail.service_account)".into(),
        ));
    }
    let push: Push = parse(&callback.body, "Pub/Sub push message")?;
    let message_id = push
        .message
        .message_id
        .clone()
        .or_else(|| push.message.message_id_snake.clone())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ChannelError::BadRequest("the push has no `message.messageId`".into()))?;
    let data = push.message.data.as_deref().unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(data.trim()))
        .map_err(|_| ChannelError::BadRequest("`message.data` is not base64".into()))?;
    let notification: Notification = parse(&decoded, "Gmail notification (`message.data`)")?;
    let address = notification.email_address.trim().to_ascii_lowercase();
    if address.is_empty() {
        return Ok(ignored());
    }
    let history = match &notification.history_id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let reply: Replier = Arc::new(|_answer: String| {
        Box::pin(async {
            tracing::debug!("Gmail turn answered; the answer is in its session");
        })
    });
    let outcome = super::accept(
        gateway,
        ChannelMessage {
            channel: Channel::Gmail,
            delivery_id: message_id,
            sender_id: address.clone(),
            sender_name: None,
            conversation: address.clone(),
            text: format!(
                "New mail arrived in the Gmail mailbox {address} (history id {history}). The mail itself is not fetched; tell the owner what this notification means for them, briefly."
            ),
        },
        &gmail.allow,
        false,
        reply,
    )
    .await?;
    Ok(accepted(outcome))
}
