//! Time helpers: the API speaks epoch milliseconds; analytics groups by UTC calendar day.

use chrono::{DateTime, Utc};

use crate::StoreError;

/// One UTC day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// 0000-01-01T00:00:00Z: the earliest time a message may carry (day strings stay four-digit
/// years, so they sort as text).
pub const MIN_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z: the latest time a message may carry.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// The UTC calendar day (`YYYY-MM-DD`) of an epoch-milliseconds timestamp between
/// [`MIN_MS`] and [`MAX_MS`].
pub fn utc_day(ms: i64) -> Result<String, StoreError> {
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Err(StoreError::InvalidTimestamp(ms));
    }
    let at = DateTime::from_timestamp_millis(ms).ok_or(StoreError::InvalidTimestamp(ms))?;
    // `%Y` pads to four digits, so year 0 is `0000` and the day strings sort as text.
    Ok(at.format("%Y-%m-%d").to_string())
}

/// The first UTC midnight at or after `ms` (clamped to the supported range).
pub(crate) fn next_midnight(ms: i64) -> i64 {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let start = ms.div_euclid(DAY_MS) * DAY_MS;
    if start == ms { ms } else { start + DAY_MS }
}

/// Wall-clock now, only for bookkeeping the caller does not see (migration records).
pub(crate) fn epoch_ms_now() -> i64 {
    Utc::now().timestamp_millis()
}
