//! Time helpers: the API speaks epoch milliseconds; analytics groups by UTC calendar day.

use chrono::{DateTime, Datelike, Utc};

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
    // std's padding, not `format("%Y-%m-%d")`: chrono's formatting machinery cost ~2,400
    // instructions on every message insert. Four-digit years (0000 to 9999, checked above),
    // so the day strings sort as text.
    Ok(format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        at.month(),
        at.day()
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_day_writes_what_chrono_formats() {
        let mut ms = MIN_MS;
        // About 4,000 days spread over the whole range, both ends and a day boundary included.
        let step = (MAX_MS - MIN_MS) / 4_000;
        let mut cases = vec![MIN_MS, MAX_MS, 0, -1, DAY_MS - 1, DAY_MS];
        while ms < MAX_MS {
            cases.push(ms);
            ms += step;
        }
        for ms in cases {
            let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
            assert_eq!(
                utc_day(ms).unwrap(),
                at.format("%Y-%m-%d").to_string(),
                "{ms}"
            );
        }
        assert!(utc_day(MIN_MS - 1).is_err() && utc_day(MAX_MS + 1).is_err());
    }
}
