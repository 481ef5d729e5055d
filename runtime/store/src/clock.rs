//! Time helpers: the API speaks epoch milliseconds; analytics groups by UTC calendar day.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::StoreError;

/// The UTC calendar day (`YYYY-MM-DD`) of an epoch-milliseconds timestamp.
pub fn utc_day(ms: i64) -> Result<String, StoreError> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::InvalidTimestamp(ms))?;
    at.format(format_description!("[year]-[month]-[day]"))
        .map_err(|_| StoreError::InvalidTimestamp(ms))
}

/// Wall-clock now, only for bookkeeping the caller does not see (migration records).
pub(crate) fn epoch_ms_now() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
