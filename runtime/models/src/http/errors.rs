//! Mapping HTTP error responses to [`ProviderError`].

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::error::ProviderError;

/// Longest excerpt of an error body kept in a message.
const EXCERPT_CHARS: usize = 500;

/// Shortens `text` to at most [`EXCERPT_CHARS`] characters for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(EXCERPT_CHARS).collect();
    short.push('…');
    short
}

/// The human message of an API error body: `error.message` (OpenAI, Anthropic, vLLM),
/// `error` as a string (Ollama), `message` or `detail` (other servers), else the raw body.
pub(crate) fn error_message_from_body(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let candidates = [
            value.pointer("/error/message"),
            value.get("error"),
            value.get("message"),
            value.get("detail"),
        ];
        for candidate in candidates.into_iter().flatten() {
            if let Some(text) = candidate.as_str() {
                return excerpt(text);
            }
        }
    }
    if body.trim().is_empty() {
        return "(empty response body)".to_owned();
    }
    excerpt(body)
}

/// How long the server asked us to wait: `retry-after-ms` (OpenAI), else `retry-after` as
/// seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The error for a non-success HTTP status.
pub(crate) fn error_from_status(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let message = error_message_from_body(body);
    match status {
        401 | 403 => ProviderError::Unauthorized { status, message },
        429 => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        400..=499 => ProviderError::BadRequest { status, message },
        _ => ProviderError::Server { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn messages_are_taken_from_each_api_shape() {
        assert_eq!(
            error_message_from_body(r#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message_from_body(r#"{"error":"model \"x\" not found, try pulling it first"}"#),
            "model \"x\" not found, try pulling it first"
        );
        assert_eq!(error_message_from_body(r#"{"detail":"nope"}"#), "nope");
        assert_eq!(error_message_from_body("plain text"), "plain text");
        assert_eq!(error_message_from_body(""), "(empty response body)");
        assert!(error_message_from_body(&"x".repeat(2000)).chars().count() <= EXCERPT_CHARS + 1);
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut dated = HeaderMap::new();
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        dated.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&dated).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        let mut junk = HeaderMap::new();
        junk.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&junk), None);
    }

    #[test]
    fn statuses_map_to_their_variants() {
        let headers = HeaderMap::new();
        assert!(matches!(
            error_from_status(403, &headers, ""),
            ProviderError::Unauthorized { status: 403, .. }
        ));
        assert!(matches!(
            error_from_status(404, &headers, ""),
            ProviderError::BadRequest { status: 404, .. }
        ));
        assert!(matches!(
            error_from_status(529, &headers, ""),
            ProviderError::Server { status: 529, .. }
        ));
    }
}
