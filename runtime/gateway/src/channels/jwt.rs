//! RS256 bearer tokens of the platforms (Bot Framework, Google Chat, Pub/Sub push), checked
//! against their published keys (JWKS) with `jsonwebtoken`.
//!
//! Keys are fetched with `outbound::client()` from the configured URL (a JWKS document, or an
//! OpenID metadata document whose `jwks_uri` is one) and cached for [`MAX_AGE`]. A token whose
//! `kid` is not cached refetches the keys, at most once per [`REFETCH_AFTER`], so a stream of
//! forged `kid`s cannot turn the gateway into a request amplifier. Documents are read up to
//! [`MAX_DOCUMENT_BYTES`], keys up to [`MAX_KEYS`].

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::outbound::{self, RetryPolicy};

pub const MAX_AGE: Duration = Duration::from_secs(3600);
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
pub const MAX_KEYS: usize = 64;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("no bearer token: the `Authorization: Bearer <token>` header is required")]
    Missing,
    #[error("the bearer token is not a well-formed RS256 JWT with a `kid`")]
    Malformed,
    #[error("the bearer token is signed by a key the platform does not publish")]
    UnknownKey,
    #[error("the bearer token was refused: {0}")]
    Invalid(String),
    /// The platform's keys could not be fetched: answered 503 so the platform retries.
    #[error("the platform's signing keys could not be fetched ({0}); try again later")]
    KeysUnavailable(String),
}

/// Where the keys are published.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// A JWKS document.
    Jwks(&'a str),
    /// An OpenID metadata document with a `jwks_uri`.
    OpenIdMetadata(&'a str),
}

impl KeySource<'_> {
    fn url(&self) -> &str {
        match self {
            KeySource::Jwks(url) | KeySource::OpenIdMetadata(url) => url,
        }
    }
}

/// What a token must say besides a valid signature.
pub struct Expect<'a> {
    pub issuers: &'a [&'a str],
    pub audience: &'a str,
    /// Clock skew allowed on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
}

#[derive(Default)]
struct Cached {
    url: String,
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

/// One platform's keys, fetched on demand.
#[derive(Default)]
pub struct JwksCache {
    cached: tokio::sync::Mutex<Cached>,
}

impl JwksCache {
    /// Checks `token`'s signature against `source`'s keys and its claims against `expect`;
    /// returns the claims.
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        source: KeySource<'_>,
        token: &str,
        expect: &Expect<'_>,
    ) -> Result<Value, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.ok_or(JwtError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(JwtError::Malformed);
        }
        let jwk = self.key(http, source, &kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwtError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = expect.leeway_secs;
        validation.validate_nbf = true;
        validation.set_audience(&[expect.audience]);
        validation.set_issuer(expect.issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| JwtError::Invalid(describe(&e)))?;
        Ok(data.claims)
    }

    async fn key(
        &self,
        http: &reqwest::Client,
        source: KeySource<'_>,
        kid: &str,
    ) -> Result<Jwk, JwtError> {
        let mut cached = self.cached.lock().await;
        let stale =
            cached.url != source.url() || cached.fetched.is_none_or(|at| at.elapsed() >= MAX_AGE);
        let find = |c: &Cached| {
            c.keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned()
        };
        if !stale && let Some(key) = find(&cached) {
            return Ok(key);
        }
        let may_refetch = stale
            || cached
                .fetched
                .is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
        if !may_refetch {
            return Err(JwtError::UnknownKey);
        }
        let keys = fetch_keys(http, source).await;
        match keys {
            Ok(keys) => {
                *cached = Cached {
                    url: source.url().to_owned(),
                    keys,
                    fetched: Some(Instant::now()),
                };
            }
            // Keep serving the keys we had when the platform is briefly unreachable.
            Err(e) if cached.url == source.url() && !cached.keys.is_empty() => {
                tracing::warn!(error = %e, "refreshing platform signing keys failed; using the cached ones");
            }
            Err(e) => return Err(e),
        }
        find(&cached).ok_or(JwtError::UnknownKey)
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the `{claim}` claim is missing"),
        _ => "it is not a valid token".into(),
    }
}

async fn fetch_keys(http: &reqwest::Client, source: KeySource<'_>) -> Result<Vec<Jwk>, JwtError> {
    let jwks_url = match source {
        KeySource::Jwks(url) => url.to_owned(),
        KeySource::OpenIdMetadata(url) => {
            let metadata = fetch_json(http, url).await?;
            metadata["jwks_uri"]
                .as_str()
                .ok_or_else(|| {
                    JwtError::KeysUnavailable("the OpenID metadata has no jwks_uri".into())
                })?
                .to_owned()
        }
    };
    let document = fetch_json(http, &jwks_url).await?;
    let keys = document["keys"]
        .as_array()
        .ok_or_else(|| JwtError::KeysUnavailable("the JWKS document has no `keys`".into()))?;
    // Keys this crate cannot read (other key types, extra members it rejects) are skipped, not
    // fatal: the platform may publish more than RS256 keys.
    Ok(keys
        .iter()
        .take(MAX_KEYS)
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .collect())
}

/// GETs a JSON document, bounded by [`MAX_DOCUMENT_BYTES`].
pub async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Value, JwtError> {
    let policy = RetryPolicy {
        attempts: 2,
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    let response =
        outbound::send_with_retry("fetching platform signing keys", policy, || http.get(url))
            .await
            .map_err(|e| JwtError::KeysUnavailable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(JwtError::KeysUnavailable(format!(
            "the key URL answered HTTP {}",
            response.status()
        )));
    }
    let body = outbound::read_bounded(response, MAX_DOCUMENT_BYTES)
        .await
        .map_err(JwtError::KeysUnavailable)?;
    serde_json::from_slice(&body)
        .map_err(|e| JwtError::KeysUnavailable(format!("the key document is not JSON: {e}")))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
