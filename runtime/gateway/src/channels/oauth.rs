//! OAuth token requests of the reply clients (Bot Framework client credentials, Google service
//! account JWT bearer): a form POST answered with `access_token` and `expires_in`.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::outbound::{self, RetryPolicy};

/// Largest token response read, in bytes.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// A token endpoint's answer.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// POSTs `form` (already encoded) to the token endpoint `url`. Errors name `what` and the
/// status, never the form (it holds the secret).
pub async fn token(
    http: &reqwest::Client,
    url: &str,
    form: String,
    what: &str,
) -> Result<TokenResponse, String> {
    let response = outbound::send_with_retry(what, RetryPolicy::default(), || {
        http.post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.clone())
    })
    .await
    .map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "{what}: the token endpoint answered HTTP {status}; check the channel's credentials"
        ));
    }
    let body = outbound::read_bounded(response, MAX_TOKEN_RESPONSE_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|_| format!("{what}: the token response is not JSON with an access_token"))
}

/// A reply client's access token, cached until a minute before it expires, for the
/// credentials it was fetched with (a `config.reload` that changes them fetches anew).
#[derive(Default)]
pub struct TokenCache {
    cached: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    credentials: String,
    token: String,
    until: Instant,
}

impl TokenCache {
    /// The cached token for `credentials` (a non-secret name of them: endpoint and client),
    /// else the one `fetch` gets.
    pub async fn get<F>(&self, credentials: String, fetch: F) -> Result<String, String>
    where
        F: Future<Output = Result<TokenResponse, String>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.credentials == credentials
            && Instant::now() < c.until
        {
            return Ok(c.token.clone());
        }
        let fresh = fetch.await?;
        let lifetime = Duration::from_secs(fresh.expires_in.unwrap_or(3600).saturating_sub(60));
        *cached = Some(Cached {
            credentials,
            token: fresh.access_token.clone(),
            until: Instant::now() + lifetime,
        });
        Ok(fresh.access_token)
    }

    /// Drops the token (the API refused it before its expiry).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
