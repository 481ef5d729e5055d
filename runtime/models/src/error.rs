//! Everything that can go wrong with a model call, each case saying what to do about it.

use std::time::Duration;

/// Why a model call (or building a provider) failed.
///
/// The `Display` text is meant for the operator's log and the user's error event: it says what
/// went wrong and what to do. [`ProviderError::is_retryable`] tells the agent loop whether the
/// same request may succeed later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider configuration cannot work (missing model or key, bad URL, unreadable CA file).
    #[error("model provider configuration is invalid: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// HTTP 401/403: the API refused the credentials.
    #[error(
        "the model API refused the credentials (HTTP {status}): {message}; check the API key \
         (`api_key`, or the environment variable named by `api_key_env`) and that it may use this model"
    )]
    Unauthorized {
        /// 401 or 403 (or the in-stream equivalent).
        status: u16,
        /// The API's own explanation.
        message: String,
    },
    /// HTTP 429 (or an in-stream rate-limit error).
    #[error("the model API is rate limiting us{}: {message}; slow down or raise the account's limits", retry_hint(*retry_after))]
    RateLimited {
        /// How long the API asked us to wait (`retry-after-ms` / `retry-after`), when it said.
        retry_after: Option<Duration>,
        /// The API's own explanation.
        message: String,
    },
    /// Any other 4xx: the request itself is wrong (unknown model, prompt too long, bad tool schema).
    #[error(
        "the model API rejected the request (HTTP {status}): {message}; check the model name, the \
         base URL and the size of the conversation"
    )]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The API's own explanation.
        message: String,
    },
    /// HTTP 5xx (including Anthropic's 529 "overloaded").
    #[error("the model server failed (HTTP {status}): {message}; try again later")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The API's own explanation.
        message: String,
    },
    /// The API reported an error inside an otherwise healthy event stream.
    #[error("the model reported an error mid-stream: {message}; try again")]
    Upstream {
        /// The API's own explanation.
        message: String,
    },
    /// The connection ended before the stream's terminal event.
    #[error("the model stream was cut off before it finished ({detail}); try again")]
    StreamCut {
        /// What was observed.
        detail: String,
    },
    /// No progress within a configured timeout.
    #[error(
        "the model API did not respond within {} ms while {phase}; check that the server is up \
         and not overloaded, or raise `timeouts` in the provider configuration", after.as_millis()
    )]
    Timeout {
        /// What we were waiting for.
        phase: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// The caller cancelled the call.
    #[error("the model call was cancelled")]
    Cancelled,
    /// The request could not be sent (connection refused, DNS, TLS).
    #[error(
        "could not reach the model API: {detail}; check `base_url`, that the server is running \
         and, for https, that its certificate is trusted (system store or `ca_file`)"
    )]
    Transport {
        /// The underlying error, with its causes.
        detail: String,
    },
    /// The API sent something that is not the documented format.
    #[error(
        "the model API sent data we could not understand: {detail}; check that `kind` matches the server's API"
    )]
    Decode {
        /// What could not be decoded, with an excerpt.
        detail: String,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!(" (retry after {} ms)", after.as_millis()),
        None => String::new(),
    }
}

impl ProviderError {
    /// Whether the same request may succeed if sent again later (rate limits, server failures,
    /// cut streams, timeouts, connection failures). Configuration, credential and request errors
    /// need a fix first; a cancellation was asked for.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Upstream { .. }
                | Self::StreamCut { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
        )
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let unauthorized = ProviderError::Unauthorized {
            status: 401,
            message: "invalid x-api-key".into(),
        };
        assert!(unauthorized.to_string().contains("check the API key"));
        assert!(!unauthorized.is_retryable());
        let limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow".into(),
        };
        assert!(limited.to_string().contains("retry after 2000 ms"));
        assert!(limited.to_string().contains("slow down"));
        assert!(limited.is_retryable());
        let timeout = ProviderError::Timeout {
            phase: "waiting for the next chunk",
            after: Duration::from_millis(250),
        };
        assert!(timeout.to_string().contains("250 ms"));
        assert!(!ProviderError::Cancelled.is_retryable());
    }
}
