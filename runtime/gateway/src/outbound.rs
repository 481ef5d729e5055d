//! Outbound HTTP calls to services the operator configured (chat platform APIs, Web Push
//! services): one client (rustls with ring, from `flynn_models::web_client`) and a bounded retry
//! that honours `Retry-After`.
//!
//! Retried: 429, 5xx and connection failures (refused, reset, cut mid-response), with exponential
//! backoff from [`RetryPolicy::first_backoff`] doubling up to [`RetryPolicy::max_backoff`], or the
//! server's `Retry-After` when it says (capped by `max_backoff`), at most
//! [`RetryPolicy::attempts`] tries. Any other status is the caller's to interpret (a push service's
//! 404/410, a platform's 401).

use std::time::Duration;

/// Why an outbound call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    #[error(
        "{what}: {attempts} attempts failed, the last with {last}; check that the service is reachable and try again later"
    )]
    Exhausted {
        what: String,
        attempts: u32,
        last: String,
    },
}

/// How often and how long a call is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Per attempt, from sending the request to the end of the response head.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
        }
    }
}

/// The client every outbound call uses.
pub fn client() -> Result<reqwest::Client, OutboundError> {
    flynn_models::web_client(
        concat!("flynn-gateway/", env!("CARGO_PKG_VERSION")),
        Duration::from_secs(10),
    )
    .map_err(|e| OutboundError::Client(e.to_string()))
}

/// Sends the request `make` builds (called again for each attempt), retrying as the module says.
/// Returns the first response that is not retried, or the last one of a 429/5xx series.
/// `what` names the call in errors and logs (never a URL with a secret in it).
pub async fn send_with_retry(
    what: &str,
    policy: RetryPolicy,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, OutboundError> {
    let mut backoff = policy.first_backoff;
    let mut last = String::new();
    let attempts = policy.attempts.max(1);
    for attempt in 1..=attempts {
        let wait = match make().timeout(policy.timeout).send().await {
            Ok(response) => {
                let status = response.status();
                if !(status.as_u16() == 429 || status.is_server_error()) {
                    return Ok(response);
                }
                if attempt == attempts {
                    return Ok(response);
                }
                last = format!("HTTP {status}");
                flynn_models::retry_after(response.headers()).unwrap_or(backoff)
            }
            Err(error) => {
                last = describe(&error);
                backoff
            }
        };
        if attempt == attempts {
            break;
        }
        let wait = wait.min(policy.max_backoff);
        tracing::debug!(what, attempt, %last, ?wait, "outbound call will be retried");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
    Err(OutboundError::Exhausted {
        what: what.to_owned(),
        attempts,
        last,
    })
}

/// A transport error without its URL (query strings can hold tokens).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "a timeout"
    } else if error.is_connect() {
        "a connection failure"
    } else if error.is_body() || error.is_decode() {
        "a cut response"
    } else {
        "a transport error"
    };
    match std::error::Error::source(error) {
        Some(source) => format!("{kind} ({source})"),
        None => kind.to_owned(),
    }
}

/// Reads a response body, refusing more than `max` bytes.
pub async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "the response was cut".to_owned())?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the response is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
