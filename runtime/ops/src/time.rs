//! Clock helpers: everything on the wire is epoch milliseconds (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::DateTime;

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Parses an RFC 3339 timestamp with up to nanosecond precision (as `docker logs --timestamps`
/// prints) into epoch milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(parsed.timestamp_millis()).ok()
}
