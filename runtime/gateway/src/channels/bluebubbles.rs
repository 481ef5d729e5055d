//! BlueBubbles (iMessage through a BlueBubbles server on a Mac): `POST /bluebubbles/events`.
//!
//! - Webhook: the server posts `{"type":"new-message","data":{..message..}}`; other types
//!   (`updated-message`, `typing-indicator`, ...) are answered 200 and ignored, as are the
//!   account's own messages (`data.isFromMe`).
//! - Trust: BlueBubbles does not sign webhooks, so the URL registered on the server carries a
//!   token (`?token=` or `?password=`; a bearer header works too), compared in constant time
//!   with `webhook_token_env`'s value, else the server password.
//! - Sender: `data.handle.address`; session `bluebubbles:<data.chats[0].guid>`; dedupe by
//!   `data.guid`.
//! - Reply: `POST {server_url}/api/v1/message/text?password=..` with `chatGuid`, `tempGuid`,
//!   `message`, `method`. The URL holds the password: it is never logged.

use std::sync::Arc;

use serde::Deserialize;

use super::callback::{Callback, accepted, ignored, parse, secret, token_matches};
use super::{Channel, ChannelError, ChannelMessage, Replier};
use crate::gateway::Gateway;
use crate::outbound::{self, RetryPolicy};

#[derive(Debug, Deserialize)]
pub struct Webhook {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Option<Message>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub guid: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub is_from_me: bool,
    #[serde(default)]
    pub handle: Option<Handle>,
    #[serde(default)]
    pub chats: Vec<Chat>,
}

#[derive(Debug, Deserialize)]
pub struct Handle {
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub guid: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

pub async fn handle(gateway: &Arc<Gateway>, callback: Callback) -> super::callback::HandledResult {
    let config = gateway.config();
    let bb = &config.channels.bluebubbles;
    if !bb.enabled {
        return Err(ChannelError::Disabled(Channel::BlueBubbles.config_key()));
    }
    let expected = match &bb.webhook_token_env {
        Some(env) => secret(Some(env), "channels.bluebubbles.webhook_token_env")?,
        None => secret(
            bb.password_env.as_deref(),
            "channels.bluebubbles.password_env",
        )?,
    };
    let presented = callback
        .query
        .get("token")
        .or_else(|| callback.query.get("password"))
        .map(String::as_str)
        .or_else(|| super::jwt::bearer(&callback.headers));
    if !token_matches(presented, &expected) {
        return Err(ChannelError::Unauthorized(
            "the webhook token is missing or wrong: register the webhook URL with `?token=<the token>`".into(),
        ));
    }
    let webhook: Webhook = parse(&callback.body, "BlueBubbles webhook")?;
    if webhook.kind != "new-message" {
        return Ok(ignored());
    }
    let message = webhook.data.ok_or_else(|| {
        ChannelError::BadRequest("a `new-message` webhook needs a `data` message".into())
    })?;
    if message.is_from_me {
        return Ok(ignored());
    }
    let text = message.text.unwrap_or_default();
    let Some(handle) = message.handle else {
        return Err(ChannelError::BadRequest(
            "the message has no `handle.address` (its sender)".into(),
        ));
    };
    if text.trim().is_empty() {
        // Attachments and reactions without text: nothing for the agent.
        return Ok(ignored());
    }
    let chat_guid = message
        .chats
        .first()
        .map(|c| c.guid.clone())
        .unwrap_or_else(|| format!("iMessage;-;{}", handle.address));
    let reply = replier(gateway.clone(), chat_guid.clone());
    let outcome = super::accept(
        gateway,
        ChannelMessage {
            channel: Channel::BlueBubbles,
            delivery_id: message.guid,
            sender_id: handle.address,
            sender_name: None,
            conversation: chat_guid,
            text,
        },
        &bb.allow,
        true,
        reply,
    )
    .await?;
    Ok(accepted(outcome))
}

fn replier(gateway: Arc<Gateway>, chat_guid: String) -> Replier {
    Arc::new(move |text: String| {
        let gateway = gateway.clone();
        let chat_guid = chat_guid.clone();
        Box::pin(async move {
            if let Err(e) = send(&gateway, &chat_guid, &text).await {
                tracing::warn!(error = %e, "BlueBubbles reply not delivered");
            }
        })
    })
}

/// Sends `text` to the chat through the server's REST API.
pub async fn send(gateway: &Gateway, chat_guid: &str, text: &str) -> Result<(), String> {
    let config = gateway.config();
    let bb = &config.channels.bluebubbles;
    let password = secret(
        bb.password_env.as_deref(),
        "channels.bluebubbles.password_env",
    )
    .map_err(|e| e.to_string())?;
    let mut url = reqwest::Url::parse(bb.server_url.trim_end_matches('/'))
        .map_err(|_| "channels.bluebubbles.server_url is not a URL".to_owned())?;
    url.path_segments_mut()
        .map_err(|_| "channels.bluebubbles.server_url cannot have a path".to_owned())?
        .pop_if_empty()
        .extend(["api", "v1", "message", "text"]);
    url.query_pairs_mut().append_pair("password", &password);
    let body = serde_json::json!({
        "chatGuid": chat_guid,
        "tempGuid": format!("flynn-{}", uuid::Uuid::new_v4()),
        "message": text,
        "method": bb.send_method,
    })
    .to_string();
    let http = gateway.channels.http().map_err(|e| e.to_string())?;
    let response =
        outbound::send_with_retry("BlueBubbles message/text", RetryPolicy::default(), || {
            http.post(url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
        .map_err(|e| e.to_string())?;
    match response.status() {
        s if s.is_success() => Ok(()),
        s if s.as_u16() == 401 => Err(
            "the BlueBubbles server refused the password (401): check channels.bluebubbles.password_env".to_owned(),
        ),
        s => Err(format!("the BlueBubbles server answered HTTP {s}")),
    }
}
