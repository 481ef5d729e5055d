//! Redeliveries: platforms retry a callback they think failed (slow, cut, 5xx), with the same
//! message or activity id. The first delivery of an id is recorded in the store (atomic insert,
//! kept `channels.dedupe_ttl_secs`); later ones are answered 200 and do nothing else, even
//! while the first one's turn is still running.
//!
//! An id is recorded before its turn starts: a gateway that dies in between loses that message
//! rather than answering it twice.

use crate::gateway::{Gateway, now_ms};

use super::message::Channel;

/// `true` the first time `delivery_id` is seen on `channel` within the dedupe window.
pub async fn first_delivery(
    gateway: &Gateway,
    channel: Channel,
    delivery_id: &str,
) -> Result<bool, flynn_store::StoreError> {
    let ttl_ms = gateway
        .config()
        .channels
        .dedupe_ttl_secs
        .saturating_mul(1000)
        .min(i64::MAX as u64) as i64;
    let now = now_ms();
    gateway
        .store
        .first_delivery(channel.name(), delivery_id, now, now.saturating_add(ttl_ms))
        .await
}

/// Forgets an accepted id whose message was not taken after all (answered 503), so the
/// platform's retry is processed.
pub async fn forget(
    gateway: &Gateway,
    channel: Channel,
    delivery_id: &str,
) -> Result<(), flynn_store::StoreError> {
    gateway
        .store
        .forget_delivery(channel.name(), delivery_id)
        .await
}
