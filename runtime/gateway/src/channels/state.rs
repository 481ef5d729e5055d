//! What the channels keep between callbacks, held by the gateway's shared state. Its own module
//! so that `Gateway` does not name `channels` itself (whose entry points take `&Gateway`).

use std::sync::OnceLock;

use super::jwt::JwksCache;
use super::oauth::TokenCache;
use super::wrong_codes::WrongCodes;
use crate::outbound::{self, OutboundError};

/// Caches the channels keep between callbacks.
#[derive(Default)]
pub struct ChannelState {
    http: OnceLock<reqwest::Client>,
    pub teams_keys: JwksCache,
    pub chat_keys: JwksCache,
    pub gmail_keys: JwksCache,
    pub teams_token: TokenCache,
    pub chat_token: TokenCache,
    pub wrong_codes: WrongCodes,
}

impl ChannelState {
    /// The outbound client, built on first use.
    pub fn http(&self) -> Result<reqwest::Client, OutboundError> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        let client = outbound::client()?;
        Ok(self.http.get_or_init(|| client).clone())
    }
}
