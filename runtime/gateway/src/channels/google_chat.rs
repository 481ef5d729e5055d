//! Google Chat (a Chat app with an HTTP endpoint, classic event format): `POST
//! /google-chat/events`. The newer Google Workspace add-on event format is not read.
//!
//! - Trust: the bearer token Chat sends, per the app's "Authentication Audience": a JWT from
//!   `chat@system.gserviceaccount.com` with the project number as audience (`project_number`),
//!   or a Google OIDC ID token for the endpoint URL whose `email` is
//!   `chat@system.gserviceaccount.com` (`endpoint_url`). Alternatively, when
//!   `verification_token_env` is set, a shared token in `?token=`, the bearer header or the
//!   event's `token` field.
//! - Events: `MESSAGE` events are turns (text: `argumentText`, else `text`); other types and
//!   bot senders are answered `{}`. Dedupe by `message.name`; session
//!   `googlechat:<space.name>`; sender `user.name` (`users/123`; the allow-list also matches
//!   `user.email`).
//! - Reply: the HTTP answer waits up to `sync_reply_secs` for the turn and carries its answer
//!   as `{"text": ..}` (the platform gives 30 s); a later answer goes through the Chat API,
//!   `POST {api_url}/v1/{space}/messages` in the message's thread, with a token the service
//!   account (`service_account_key_env`: the JSON key) gets by a signed JWT assertion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;
use warp::reply::Reply;

use super::callback::{Callback, HandledResult, parse, secret, token_matches};
use super::config::{ChatAudienceType, GoogleChatConfig};
use super::jwt::{Expect, JwtError, KeySource, bearer};
use super::{Accepted, Channel, ChannelError, ChannelMessage, Replier, oauth};
use crate::gateway::Gateway;
use crate::outbound::{self, RetryPolicy};

/// The service account Chat signs as.
pub const CHAT_ISSUER: &str = "chat@system.gserviceaccount.com";
/// Scope of the Chat API token of a Chat app.
pub const CHAT_BOT_SCOPE: &str = "https://www.googleapis.com/auth/chat.bot";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub space: Option<Space>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub name: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub argument_text: Option<String>,
    #[serde(default)]
    pub sender: Option<User>,
    #[serde(default)]
    pub thread: Option<Thread>,
    #[serde(default)]
    pub space: Option<Space>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Space {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Thread {
    pub name: String,
}

/// Where the answer of a turn goes while the HTTP answer still waits for it.
type SyncSlot = Arc<Mutex<Option<oneshot::Sender<String>>>>;

pub async fn handle(gateway: &Arc<Gateway>, callback: Callback) -> HandledResult {
    let config = gateway.config();
    let chat = &config.channels.google_chat;
    if !chat.enabled {
        return Err(ChannelError::Disabled(Channel::GoogleChat.config_key()));
    }
    authenticate(gateway, chat, &callback).await?;
    let event: Event = parse(&callback.body, "Google Chat event")?;
    if event.kind != "MESSAGE" {
        return Ok(no_message());
    }
    let message = event
        .message
        .ok_or_else(|| ChannelError::BadRequest("a MESSAGE event needs a `message`".into()))?;
    let user = event
        .user
        .or_else(|| message.sender.clone())
        .ok_or_else(|| ChannelError::BadRequest("the event names no `user`".into()))?;
    if user.kind.as_deref() == Some("BOT") {
        return Ok(no_message());
    }
    let space = event
        .space
        .or_else(|| message.space.clone())
        .ok_or_else(|| ChannelError::BadRequest("the event names no `space`".into()))?;
    if !is_space_name(&space.name) {
        return Err(ChannelError::BadRequest(
            "`space.name` is not a Chat space name (`spaces/<id>`)".into(),
        ));
    }
    let text = message
        .argument_text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(message.text.as_deref())
        .unwrap_or("")
        .trim()
        .to_owned();
    if text.is_empty() {
        return Ok(no_message());
    }
    let (sync, answer) = oneshot::channel();
    let slot: SyncSlot = Arc::new(Mutex::new(Some(sync)));
    let reply = replier(
        gateway.clone(),
        space.name.clone(),
        message.thread.map(|t| t.name),
        slot.clone(),
    );
    let mut allow = chat.allow.clone();
    if let Some(email) = &user.email
        && super::allowed(&chat.allow, email)
    {
        allow.push(user.name.clone());
    }
    let outcome = super::accept(
        gateway,
        ChannelMessage {
            channel: Channel::GoogleChat,
            delivery_id: message.name,
            sender_id: user.name,
            sender_name: user.display_name,
            conversation: space.name,
            text,
        },
        &allow,
        true,
        reply,
    )
    .await?;
    if !matches!(outcome, Accepted::Turn | Accepted::Gated) {
        return Ok(no_message());
    }
    let window = Duration::from_secs(chat.sync_reply_secs);
    match wait_in_window(answer, &slot, window).await {
        Some(text) => Ok(warp::reply::json(&json!({ "text": text })).into_response()),
        None => Ok(no_message()),
    }
}

/// `spaces/<id>` with an id of letters, digits, `-` and `_` (it becomes part of API paths).
fn is_space_name(name: &str) -> bool {
    name.strip_prefix("spaces/").is_some_and(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// `{}`: Chat posts nothing.
fn no_message() -> warp::reply::Response {
    warp::reply::json(&json!({})).into_response()
}

async fn authenticate(
    gateway: &Gateway,
    chat: &GoogleChatConfig,
    callback: &Callback,
) -> Result<(), ChannelError> {
    if let Some(env) = &chat.verification_token_env {
        let expected = secret(Some(env), "channels.google_chat.verification_token_env")?;
        let in_body = serde_json::from_slice::<serde_json::Value>(&callback.body)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned));
        let presented = [
            callback.query.get("token").cloned(),
            bearer(&callback.headers).map(str::to_owned),
            in_body,
        ];
        if presented
            .iter()
            .any(|p| token_matches(p.as_deref(), &expected))
        {
            return Ok(());
        }
        if chat.audience.trim().is_empty() {
            return Err(ChannelError::Unauthorized(
                "the verification token is missing or wrong".into(),
            ));
        }
    }
    let token = bearer(&callback.headers).ok_or(JwtError::Missing)?;
    let http = gateway
        .channels
        .http()
        .map_err(|e| ChannelError::Unavailable(e.to_string()))?;
    let (source, issuers): (_, &[&str]) = match chat.audience_type {
        ChatAudienceType::ProjectNumber => (KeySource::Jwks(&chat.jwks_url), &[CHAT_ISSUER]),
        ChatAudienceType::EndpointUrl => (
            KeySource::Jwks(&chat.oidc_jwks_url),
            &["https://accounts.google.com", "accounts.google.com"],
        ),
    };
    let expect = Expect {
        issuers,
        audience: &chat.audience,
        leeway_secs: 60,
    };
    let claims = gateway
        .channels
        .chat_keys
        .verify(&http, source, token, &expect)
        .await?;
    if chat.audience_type == ChatAudienceType::EndpointUrl
        && (claims["email"] != CHAT_ISSUER || claims["email_verified"] != json!(true))
    {
        return Err(ChannelError::Unauthorized(format!(
            "the ID token is not from {CHAT_ISSUER}"
        )));
    }
    Ok(())
}

/// The answer, if it comes within `window`; after that, the slot is closed and a later
/// answer goes through the Chat API.
async fn wait_in_window(
    mut answer: oneshot::Receiver<String>,
    slot: &SyncSlot,
    window: Duration,
) -> Option<String> {
    match tokio::time::timeout(window, &mut answer).await {
        Ok(answer) => answer.ok(),
        Err(_) => {
            let still_open = slot.lock().ok().and_then(|mut s| s.take()).is_some();
            if still_open {
                None
            } else {
                // The replier took the slot just now: its text is already in the channel.
                answer.await.ok()
            }
        }
    }
}

fn replier(
    gateway: Arc<Gateway>,
    space: String,
    thread: Option<String>,
    slot: SyncSlot,
) -> Replier {
    Arc::new(move |text: String| {
        let gateway = gateway.clone();
        let (space, thread, slot) = (space.clone(), thread.clone(), slot.clone());
        Box::pin(async move {
            let waiting = slot.lock().ok().and_then(|mut s| s.take());
            let text = match waiting {
                Some(sync) => match sync.send(text) {
                    Ok(()) => return,
                    Err(text) => text,
                },
                None => text,
            };
            if let Err(e) = send(&gateway, &space, thread.as_deref(), &text).await {
                tracing::warn!(error = %e, "Google Chat reply not delivered");
            }
        })
    })
}

/// Posts `text` to the space (in `thread` when known) through the Chat API.
pub async fn send(
    gateway: &Gateway,
    space: &str,
    thread: Option<&str>,
    text: &str,
) -> Result<(), String> {
    let config = gateway.config();
    let chat = &config.channels.google_chat;
    let http = gateway.channels.http().map_err(|e| e.to_string())?;
    let token = app_token(gateway, &http).await?;
    let mut url = reqwest::Url::parse(chat.api_url.trim_end_matches('/'))
        .map_err(|_| "channels.google_chat.api_url is not a URL".to_owned())?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| "channels.google_chat.api_url cannot take a path".to_owned())?;
        path.pop_if_empty().push("v1");
        path.extend(space.split('/')); // `spaces/<id>`, checked by `is_space_name`
        path.push("messages");
    }
    let mut body = json!({ "text": text });
    if let Some(thread) = thread {
        url.query_pairs_mut()
            .append_pair("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
        body["thread"] = json!({ "name": thread });
    }
    let body = body.to_string();
    let response = outbound::send_with_retry(
        "Google Chat messages.create",
        RetryPolicy::default(),
        || {
            http.post(url.clone())
                .bearer_auth(&token)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.as_u16() == 401 || status.as_u16() == 403 {
        gateway.channels.chat_token.forget().await;
    }
    Err(format!("the Chat API answered HTTP {status}"))
}

/// The service account key fields used (the JSON key file Google issues).
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
}

/// The Chat API token of the app's service account (cached in `ChannelState::chat_token`).
async fn app_token(gateway: &Gateway, http: &reqwest::Client) -> Result<String, String> {
    let config = gateway.config();
    let chat = &config.channels.google_chat;
    let key = secret(
        chat.service_account_key_env.as_deref(),
        "channels.google_chat.service_account_key_env",
    )
    .map_err(|e| e.to_string())?;
    let key: ServiceAccountKey = serde_json::from_str(&key).map_err(|_| {
        "channels.google_chat.service_account_key_env does not hold a service account JSON key (client_email, private_key)".to_owned()
    })?;
    let credentials = format!("{} {}", chat.oauth_url, key.client_email);
    gateway
        .channels
        .chat_token
        .get(credentials, async {
            let assertion = assertion(&key, &chat.oauth_url)?;
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                .append_pair("assertion", &assertion)
                .finish();
            oauth::token(http, &chat.oauth_url, form, "Google Chat token").await
        })
        .await
}

/// The signed JWT a service account presents to the token endpoint (RFC 7523).
fn assertion(key: &ServiceAccountKey, audience: &str) -> Result<String, String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": key.client_email,
        "scope": CHAT_BOT_SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = key.private_key_id.clone();
    let signing = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|_| "the service account's private_key is not an RSA PEM key".to_owned())?;
    jsonwebtoken::encode(&header, &claims, &signing)
        .map_err(|_| "could not sign the service account assertion".to_owned())
}
