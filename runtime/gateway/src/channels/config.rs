//! `[channels.*]`: one table per chat channel. Every channel is off by default; secrets are
//! named by `*_env` keys (the variable is read at start and removed from the environment with
//! the gateway's other secrets), never written in the file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[channels]`: the four channels and the limits they share.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// How long a platform message/activity id is remembered, so a redelivery does nothing.
    pub dedupe_ttl_secs: u64,
    /// An unknown sender is asked for a pairing code once per this many seconds.
    pub ask_again_after_secs: u64,
    /// Wrong pairing codes a sender may send per `wrong_code_window_secs` before it must wait.
    pub wrong_code_limit: u32,
    pub wrong_code_window_secs: u64,
    pub teams: TeamsConfig,
    pub google_chat: GoogleChatConfig,
    pub bluebubbles: BlueBubblesConfig,
    pub gmail: GmailConfig,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            dedupe_ttl_secs: 86_400,
            ask_again_after_secs: 86_400,
            wrong_code_limit: 5,
            wrong_code_window_secs: 900,
            teams: TeamsConfig::default(),
            google_chat: GoogleChatConfig::default(),
            bluebubbles: BlueBubblesConfig::default(),
            gmail: GmailConfig::default(),
        }
    }
}

/// `[channels.teams]`: a Microsoft Bot Framework bot (Azure Bot resource).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsConfig {
    pub enabled: bool,
    /// The bot's Microsoft App ID: the audience of incoming tokens and the client id of replies.
    pub app_id: String,
    /// Variable holding the bot's client secret (App password).
    pub app_password_env: Option<String>,
    /// OpenID metadata whose `jwks_uri` lists the keys that sign incoming activities.
    pub openid_metadata_url: String,
    /// Issuer of incoming tokens.
    pub issuer: String,
    /// Where the bot gets its client-credentials token for replies.
    pub oauth_url: String,
    pub oauth_scope: String,
    /// Senders (`from.aadObjectId` or `from.id`) that skip pairing.
    pub allow: Vec<String>,
}

impl Default for TeamsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            app_id: String::new(),
            app_password_env: None,
            openid_metadata_url:
                "https://login.botframework.com/v1/.well-known/openidconfiguration".to_owned(),
            issuer: "https://api.botframework.com".to_owned(),
            oauth_url: "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
                .to_owned(),
            oauth_scope: "https://api.botframework.com/.default".to_owned(),
            allow: Vec::new(),
        }
    }
}

/// Which token Google Chat sends, as chosen in the app's "Authentication Audience" setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatAudienceType {
    /// A JWT from `chat@system.gserviceaccount.com` whose audience is the project number.
    #[default]
    ProjectNumber,
    /// A Google OIDC ID token (email `chat@system.gserviceaccount.com`) whose audience is the
    /// endpoint URL.
    EndpointUrl,
}

/// `[channels.google_chat]`: a Google Chat app with an HTTP endpoint (classic Chat app event
/// format).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleChatConfig {
    pub enabled: bool,
    pub audience_type: ChatAudienceType,
    /// The project number, or the endpoint URL (`audience_type = "endpoint_url"`).
    pub audience: String,
    /// Keys of `project_number` tokens.
    pub jwks_url: String,
    /// Keys of `endpoint_url` (OIDC) tokens.
    pub oidc_jwks_url: String,
    /// Variable holding a shared token accepted instead of a JWT (`?token=` or bearer), for
    /// setups that put a secret in the endpoint URL. Unset: JWT only.
    pub verification_token_env: Option<String>,
    /// Variable holding the service account key (the JSON file's content) used for replies
    /// through the Chat API when a turn outlasts `sync_reply_secs`.
    pub service_account_key_env: Option<String>,
    /// Base URL of the Chat API.
    pub api_url: String,
    /// Google's OAuth token endpoint, where the service account trades a signed assertion for
    /// a Chat API token.
    pub oauth_url: String,
    /// How long the event's HTTP answer waits for the turn (the platform allows 30 s).
    pub sync_reply_secs: u64,
    /// Senders (`user.name`, e.g. `users/123`, or `user.email`) that skip pairing.
    pub allow: Vec<String>,
}

impl Default for GoogleChatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            audience_type: ChatAudienceType::ProjectNumber,
            audience: String::new(),
            jwks_url: "https://www.googleapis.com/service_accounts/v1/metadata/jwk/chat@system.gserviceaccount.com".to_owned(),
            oidc_jwks_url: "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
            verification_token_env: None,
            service_account_key_env: None,
            api_url: "https://chat.googleapis.com".to_owned(),
            oauth_url: "https://oauth2.googleapis.com/token".to_owned(),
            sync_reply_secs: 25,
            allow: Vec::new(),
        }
    }
}

/// `[channels.bluebubbles]`: a BlueBubbles server (iMessage on a Mac).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BlueBubblesConfig {
    pub enabled: bool,
    /// The BlueBubbles server's URL, e.g. `http://192.168.1.20:1234`.
    pub server_url: String,
    /// Variable holding the server password (REST calls; also the webhook's token unless
    /// `webhook_token_env` is set).
    pub password_env: Option<String>,
    /// Variable holding the token the webhook URL carries (`?token=` or `?password=`, or a
    /// bearer header). Unset: the server password.
    pub webhook_token_env: Option<String>,
    /// How the server sends replies: `apple-script` or `private-api`.
    pub send_method: String,
    /// Senders (`handle.address`: phone number or email) that skip pairing.
    pub allow: Vec<String>,
}

impl Default for BlueBubblesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            server_url: String::new(),
            password_env: None,
            webhook_token_env: None,
            send_method: "apple-script".to_owned(),
            allow: Vec::new(),
        }
    }
}

/// `[channels.gmail]`: Gmail watch notifications through a Pub/Sub push subscription.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GmailConfig {
    pub enabled: bool,
    /// The push subscription's audience (its OIDC token audience setting).
    pub audience: String,
    /// The service account the subscription pushes as (the token's `email`).
    pub service_account: String,
    pub jwks_url: String,
    /// Mailboxes (`emailAddress`) whose notifications become turns; Gmail has no pairing.
    pub allow: Vec<String>,
}

impl Default for GmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            audience: String::new(),
            service_account: String::new(),
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
            allow: Vec::new(),
        }
    }
}

impl ChannelsConfig {
    /// The `*_env` variables that hold channel secrets.
    pub fn secret_env_names(&self) -> impl Iterator<Item = &str> {
        [
            self.teams.app_password_env.as_deref(),
            self.google_chat.verification_token_env.as_deref(),
            self.google_chat.service_account_key_env.as_deref(),
            self.bluebubbles.password_env.as_deref(),
            self.bluebubbles.webhook_token_env.as_deref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Checks what an enabled channel needs.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.teams;
        if t.enabled && (t.app_id.trim().is_empty() || t.app_password_env.is_none()) {
            return Err("channels.teams is enabled: set app_id and app_password_env".into());
        }
        let g = &self.google_chat;
        if g.enabled && g.audience.trim().is_empty() && g.verification_token_env.is_none() {
            return Err(
                "channels.google_chat is enabled: set audience (the project number or endpoint URL)"
                    .into(),
            );
        }
        if g.enabled && !(1..=29).contains(&g.sync_reply_secs) {
            return Err(
                "channels.google_chat.sync_reply_secs must be 1-29 (Chat waits 30 s)".into(),
            );
        }
        let b = &self.bluebubbles;
        if b.enabled && (b.server_url.trim().is_empty() || b.password_env.is_none()) {
            return Err("channels.bluebubbles is enabled: set server_url and password_env".into());
        }
        if !["apple-script", "private-api"].contains(&b.send_method.as_str()) {
            return Err(
                "channels.bluebubbles.send_method must be `apple-script` or `private-api`".into(),
            );
        }
        let m = &self.gmail;
        if m.enabled
            && (m.audience.trim().is_empty()
                || m.service_account.trim().is_empty()
                || m.allow.is_empty())
        {
            return Err(
                "channels.gmail is enabled: set audience, service_account and allow (the mailboxes)"
                    .into(),
            );
        }
        if self.wrong_code_limit == 0 || self.wrong_code_window_secs == 0 {
            return Err(
                "channels.wrong_code_limit and wrong_code_window_secs must be at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(text: &str) -> Config {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_enabled_channel_needs_its_keys() {
        for (text, names) in [
            (
                "[channels.teams]\nenabled = true\n",
                "app_id and app_password_env",
            ),
            ("[channels.google_chat]\nenabled = true\n", "audience"),
            (
                "[channels.bluebubbles]\nenabled = true\n",
                "server_url and password_env",
            ),
            (
                "[channels.gmail]\nenabled = true\naudience = \"a\"\n",
                "service_account and allow",
            ),
        ] {
            let error = parse(text).validate().err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(names)),
                "{text}: {error:?}"
            );
        }
        assert!(
            Config::default().validate().is_ok(),
            "all channels are off by default"
        );
    }

    #[test]
    fn channel_secrets_are_taken_out_of_the_environment() {
        let c = parse(
            "[channels.teams]\napp_password_env = \"TEAMS_SECRET\"\n\
             [channels.bluebubbles]\npassword_env = \"BB_PASSWORD\"\n\
             [channels.google_chat]\nservice_account_key_env = \"CHAT_KEY\"\n",
        );
        let present = ["TEAMS_SECRET", "BB_PASSWORD", "CHAT_KEY", "PATH"];
        let names: Vec<String> = c.secret_env_names(present).into_iter().collect();
        assert_eq!(names, ["BB_PASSWORD", "CHAT_KEY", "TEAMS_SECRET"]);
    }

    #[test]
    fn config_get_shows_no_channel_secret() {
        let c = parse(
            "[channels.bluebubbles]\npassword_env = \"BB_PASSWORD\"\nserver_url = \"http://mac:1234\"\n",
        );
        let shown = c.redacted();
        assert_eq!(
            shown["channels"]["bluebubbles"]["server_url"],
            "http://mac:1234"
        );
        assert_eq!(shown["channels"]["bluebubbles"]["password_env"], "***");
    }
}
