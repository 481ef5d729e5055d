//! Microsoft Teams through the Bot Framework: `POST /teams/events`.
//!
//! - Trust: the `Authorization: Bearer` JWT of every activity, RS256 against the keys the
//!   OpenID metadata (`openid_metadata_url` -> `jwks_uri`) publishes; issuer
//!   `https://api.botframework.com`, audience the bot's app id, `exp`/`nbf` with 5 minutes of
//!   clock skew (the Bot Framework's own allowance), and the `serviceurl` claim, when present,
//!   equal to the activity's `serviceUrl`. The key endorsements (channel ids) are not checked.
//! - Activities: `message` ones are turns; every other type (`conversationUpdate`, `typing`,
//!   ...) and the bot's own messages (`from.id` == `recipient.id`, or the bot's id) are
//!   answered 200 and ignored. Dedupe by `id`; session `teams:<conversation.id>`; sender
//!   `from.aadObjectId`, else `from.id`. `<at>..</at>` mentions are taken out of the text.
//! - Reply: a client-credentials token from `oauth_url` (cached until a minute before it
//!   expires, dropped on a 401), then `POST {serviceUrl}/v3/conversations/{id}/activities`
//!   with a message activity that has `replyToId`. Only a `serviceUrl` from a validated
//!   activity is ever called.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::callback::{Callback, HandledResult, accepted, ignored, parse, secret};
use super::jwt::{Expect, JwtError, KeySource, bearer};
use super::{Channel, ChannelError, ChannelMessage, Replier, oauth};
use crate::gateway::Gateway;
use crate::outbound::{self, RetryPolicy};

/// Clock skew allowed on incoming tokens (the Bot Framework documents 5 minutes).
pub const LEEWAY_SECS: u64 = 300;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub service_url: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub from: Option<Account>,
    #[serde(default)]
    pub recipient: Option<Account>,
    #[serde(default)]
    pub conversation: Option<Conversation>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

pub async fn handle(gateway: &Arc<Gateway>, callback: Callback) -> HandledResult {
    let config = gateway.config();
    let teams = &config.channels.teams;
    if !teams.enabled {
        return Err(ChannelError::Disabled(Channel::Teams.config_key()));
    }
    let claims = authenticate(gateway, teams, &callback.headers).await?;
    let activity: Activity = parse(&callback.body, "Bot Framework activity")?;
    let service_url = activity.service_url.clone().unwrap_or_default();
    if let Some(claimed) = claims.get("serviceurl").and_then(|v| v.as_str())
        && claimed.trim_end_matches('/') != service_url.trim_end_matches('/')
    {
        return Err(ChannelError::Unauthorized(
            "the activity's serviceUrl is not the one its token was issued for".into(),
        ));
    }
    if activity.kind != "message" {
        return Ok(ignored());
    }
    let (Some(id), Some(from), Some(recipient), Some(conversation)) = (
        activity.id.clone(),
        activity.from.clone(),
        activity.recipient.clone(),
        activity.conversation.clone(),
    ) else {
        return Err(ChannelError::BadRequest(
            "a message activity needs `id`, `from`, `recipient` and `conversation`".into(),
        ));
    };
    if from.id == recipient.id
        || from.id == teams.app_id
        || from.id == format!("28:{}", teams.app_id)
    {
        return Ok(ignored());
    }
    if reqwest::Url::parse(&service_url).is_err() {
        return Err(ChannelError::BadRequest(
            "the activity's `serviceUrl` is not a URL".into(),
        ));
    }
    let text = strip_mentions(activity.text.as_deref().unwrap_or(""));
    if text.trim().is_empty() {
        return Ok(ignored());
    }
    let sender_id = from
        .aad_object_id
        .clone()
        .unwrap_or_else(|| from.id.clone());
    let allow = teams.allow.clone();
    let reply = replier(
        gateway.clone(),
        ReplyTo {
            service_url,
            conversation: conversation.clone(),
            user: from.clone(),
            bot: recipient,
            activity_id: id.clone(),
        },
    );
    let outcome = super::accept(
        gateway,
        ChannelMessage {
            channel: Channel::Teams,
            delivery_id: id,
            sender_id,
            sender_name: from.name.clone(),
            conversation: conversation.id,
            text,
        },
        &allow,
        true,
        reply,
    )
    .await?;
    Ok(accepted(outcome))
}

/// Checks the activity's bearer JWT; returns its claims.
async fn authenticate(
    gateway: &Gateway,
    teams: &super::config::TeamsConfig,
    headers: &http::HeaderMap,
) -> Result<serde_json::Value, ChannelError> {
    let token = bearer(headers).ok_or(JwtError::Missing)?;
    let http = gateway
        .channels
        .http()
        .map_err(|e| ChannelError::Unavailable(e.to_string()))?;
    let expect = Expect {
        issuers: &[teams.issuer.as_str()],
        audience: &teams.app_id,
        leeway_secs: LEEWAY_SECS,
    };
    let source = KeySource::OpenIdMetadata(&teams.openid_metadata_url);
    Ok(gateway
        .channels
        .teams_keys
        .verify(&http, source, token, &expect)
        .await?)
}

/// The text without `<at>name</at>` mentions (of the bot, in channels and group chats).
pub fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + "</at>".len()..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// Where a reply goes.
#[derive(Clone)]
struct ReplyTo {
    service_url: String,
    conversation: Conversation,
    user: Account,
    bot: Account,
    activity_id: String,
}

fn replier(gateway: Arc<Gateway>, to: ReplyTo) -> Replier {
    Arc::new(move |text: String| {
        let gateway = gateway.clone();
        let to = to.clone();
        Box::pin(async move {
            if let Err(e) = send(&gateway, &to, &text).await {
                tracing::warn!(error = %e, "Teams reply not delivered");
            }
        })
    })
}

async fn send(gateway: &Gateway, to: &ReplyTo, text: &str) -> Result<(), String> {
    let http = gateway.channels.http().map_err(|e| e.to_string())?;
    let mut url = reqwest::Url::parse(to.service_url.trim_end_matches('/'))
        .map_err(|_| "the activity's serviceUrl is not a URL".to_owned())?;
    url.path_segments_mut()
        .map_err(|_| "the activity's serviceUrl cannot take a path".to_owned())?
        .pop_if_empty()
        .extend(["v3", "conversations", &to.conversation.id, "activities"]);
    let body = serde_json::json!({
        "type": "message",
        "text": text,
        "from": to.bot,
        "recipient": to.user,
        "conversation": to.conversation,
        "replyToId": to.activity_id,
    })
    .to_string();
    for attempt in 0..2 {
        let token = bot_token(gateway, &http).await?;
        let response = outbound::send_with_retry(
            "Bot Framework activity reply",
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
        match response.status().as_u16() {
            200..=299 => return Ok(()),
            // A token revoked or rotated before its expiry: get a new one, once.
            401 if attempt == 0 => gateway.channels.teams_token.forget().await,
            status => return Err(format!("the Bot Framework answered HTTP {status}")),
        }
    }
    Err("the Bot Framework refused the bot's token twice; check channels.teams.app_id and app_password_env".into())
}

/// The bot's client-credentials token (cached in `ChannelState::teams_token`).
async fn bot_token(gateway: &Gateway, http: &reqwest::Client) -> Result<String, String> {
    let config = gateway.config();
    let teams = &config.channels.teams;
    let credentials = format!("{} {}", teams.oauth_url, teams.app_id);
    gateway
        .channels
        .teams_token
        .get(credentials, async {
            let password = secret(
                teams.app_password_env.as_deref(),
                "channels.teams.app_password_env",
            )
            .map_err(|e| e.to_string())?;
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &teams.app_id)
                .append_pair("client_secret", &password)
                .append_pair("scope", &teams.oauth_scope)
                .finish();
            oauth::token(http, &teams.oauth_url, form, "Bot Framework token").await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::strip_mentions;

    #[test]
    fn mentions_are_taken_out() {
        assert_eq!(strip_mentions("<at>Flynn</at> hello there"), "hello there");
        assert_eq!(strip_mentions("hi <at>Flynn</at>!"), "hi !");
        assert_eq!(strip_mentions("plain"), "plain");
        assert_eq!(strip_mentions("<at>broken"), "<at>broken");
    }
}
