//! Sending: when a turn of a session ends with an answer and no WebSocket connection is attached
//! to that session, every subscription following it gets one notification, encrypted for the
//! browser (RFC 8291 `aes128gcm`, via `web_push_native::encrypt`) and signed with the gateway's
//! VAPID key (RFC 8292), with `crate::outbound::send_with_retry` (429 and 5xx retried honouring
//! `Retry-After`) over the push client (`super::client`: no redirects, no private addresses).
//!
//! The plaintext is JSON: `{"sessionId", "runId", "title", "body"}` with `body` the first
//! [`BODY_CHARS`] characters of the answer, and never more than [`MAX_PLAINTEXT`] bytes (the
//! most a push service must accept, RFC 8291 section 4). A push service's 404 or 410 means the
//! subscription is gone: it is deleted. 413 and other 4xx are logged (by the endpoint's host
//! only: the URL is a capability) and counted.

use std::sync::Arc;

use serde_json::json;

use flynn_store::Store;

use super::Push;
use super::subscriptions;
use super::vapid::VapidKey;
use crate::outbound::{self, RetryPolicy};
use crate::snapshot::SharedConfig;

/// The most plaintext one push message carries: 4096 bytes of body less the 86-byte header,
/// the 16-byte tag and 1 byte of padding delimiter.
pub const MAX_PLAINTEXT: usize = 3993;
/// How much of the answer the notification shows.
pub const BODY_CHARS: usize = 240;
/// The notification's title.
pub const TITLE: &str = "Flynn answered";

/// How one send ended (the `outcome` label of `flynn_push_sends_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The push service accepted it (2xx).
    Delivered,
    /// 404/410: the subscription no longer exists; it was deleted.
    Gone,
    /// The subscription's `expirationTime` passed; it was deleted without sending.
    Expired,
    /// 413: the push service refused the size.
    TooLarge,
    /// Another 4xx (a VAPID or header complaint): see the log.
    Rejected,
    /// 429/5xx after the retries, or the service could not be reached.
    Failed,
    /// The stored subscription no longer passes the checks (a config change); not sent.
    Refused,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Gone => "gone",
            Self::Expired => "expired",
            Self::TooLarge => "too_large",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

/// The notification's plaintext for `answer`, bounded by [`MAX_PLAINTEXT`].
pub fn payload(session_id: &str, run_id: &str, answer: &str) -> Vec<u8> {
    let mut chars = BODY_CHARS;
    loop {
        let mut body: String = answer.chars().take(chars).collect();
        if body.len() < answer.len() {
            body.push('…');
        }
        let text = json!({
            "sessionId": session_id,
            "runId": run_id,
            "title": TITLE,
            "body": body,
        })
        .to_string();
        if text.len() <= MAX_PLAINTEXT || chars == 0 {
            return text.into_bytes();
        }
        chars /= 2;
    }
}

/// Whether a WebSocket connection follows a session (then no notification is sent).
pub trait Watchers: Send + Sync + 'static {
    fn watched(&self, session_id: &str) -> bool;
}

/// What sending needs: the configuration, the store (subscriptions), the push state (VAPID
/// key, client) and who is watching.
#[derive(Clone)]
pub struct Notifier {
    pub config: SharedConfig,
    pub store: Store,
    pub push: Arc<Push>,
    pub watchers: Arc<dyn Watchers>,
}

impl Notifier {
    /// The turn of `session_id` ended with `answer`: notifies its subscriptions in the
    /// background when push is on and no connection is attached to the session.
    pub fn turn_finished(&self, session_id: &str, run_id: &str, answer: &str) {
        // Known from memory that nobody subscribed: no scan of the connections, no task.
        if !self.config.config().push.enabled || self.store.has_no_push_subscriptions() {
            return;
        }
        if self.watchers.watched(session_id) {
            return;
        }
        let notifier = self.clone();
        let session_id = session_id.to_owned();
        let payload = payload(&session_id, run_id, answer);
        tokio::spawn(async move {
            notifier.notify_session(&session_id, payload).await;
        });
    }

    async fn notify_session(&self, session_id: &str, payload: Vec<u8>) {
        let subscriptions = match self.store.push_subscriptions_of_session(session_id).await {
            Ok(s) if s.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the session's push subscriptions");
                return;
            }
        };
        let config = self.config.config();
        let key = match self.push.vapid_key(&config).await {
            Ok((_, key)) => key,
            Err(e) => {
                tracing::warn!(error = %e, "no Web Push sent: the VAPID key is not usable");
                return;
            }
        };
        let client = match self.push.client(config.push.allow_insecure_loopback) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "no Web Push sent");
                return;
            }
        };
        for subscription in subscriptions {
            let outcome = send_one(&self.config, &client, &key, &subscription, &payload).await;
            crate::metrics::get().push_send(outcome.name());
            if matches!(outcome, Outcome::Gone | Outcome::Expired)
                && let Err(e) = self
                    .store
                    .delete_push_subscription(&subscription.endpoint)
                    .await
            {
                tracing::warn!(error = %e, "could not delete a gone push subscription");
            }
        }
    }
}

async fn send_one(
    config: &SharedConfig,
    client: &reqwest::Client,
    key: &VapidKey,
    subscription: &flynn_store::PushSubscriptionRecord,
    payload: &[u8],
) -> Outcome {
    let config = config.config();
    if subscription
        .expiration_ms
        .is_some_and(|at| at <= flynn_agent::deps::now_ms())
    {
        return Outcome::Expired;
    }
    let checked =
        subscriptions::check_endpoint(&subscription.endpoint, config.push.allow_insecure_loopback)
            .and_then(|url| {
                let public = subscriptions::decode_p256dh(&subscription.p256dh)?;
                let auth = subscriptions::decode_auth(&subscription.auth)?;
                Ok((url, public, auth))
            });
    let (url, public, auth) = match checked {
        Ok(parts) => parts,
        Err(e) => {
            tracing::warn!(reason = %e, "a stored push subscription is no longer accepted; not sent");
            return Outcome::Refused;
        }
    };
    let host = url.host_str().unwrap_or("?").to_owned();
    let auth = web_push_native::Auth::from(auth);
    let body = match web_push_native::encrypt(payload.to_vec(), &public, &auth) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, %host, "could not encrypt a push message");
            return Outcome::Refused;
        }
    };
    let authorization = key.authorization(&url, config.push.subject.as_deref());
    let ttl = config.push.ttl_secs.to_string();
    let sent = outbound::send_with_retry("web push", RetryPolicy::default(), || {
        client
            .post(url.clone())
            .header("TTL", &ttl)
            .header("Urgency", "normal")
            .header(http::header::CONTENT_ENCODING, "aes128gcm")
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::AUTHORIZATION, &authorization)
            .body(body.clone())
    })
    .await;
    let status = match sent {
        Ok(response) => response.status(),
        Err(e) => {
            tracing::warn!(error = %e, %host, "web push not delivered");
            return Outcome::Failed;
        }
    };
    match status.as_u16() {
        200..=299 => Outcome::Delivered,
        404 | 410 => {
            tracing::info!(%host, %status, "push subscription gone; deleting it");
            Outcome::Gone
        }
        413 => {
            tracing::warn!(%host, "the push service refused the message's size (413)");
            Outcome::TooLarge
        }
        429 | 500..=599 => {
            tracing::warn!(%host, %status, "web push not delivered after retries");
            Outcome::Failed
        }
        _ => {
            tracing::warn!(%host, %status, "the push service rejected the message; check push.subject and the VAPID key");
            Outcome::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    use crate::push::BASE64URL;

    /// RFC 8291 section 5 (appendix A): the user agent's keys, auth secret and the message.
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );

    fn ua() -> (p256::SecretKey, p256::PublicKey, web_push_native::Auth) {
        let secret = p256::SecretKey::from_slice(&BASE64URL.decode(UA_PRIVATE).unwrap()).unwrap();
        let public = subscriptions::decode_p256dh(UA_PUBLIC).unwrap();
        assert_eq!(secret.public_key(), public);
        let auth = web_push_native::Auth::from(subscriptions::decode_auth(AUTH).unwrap());
        (secret, public, auth)
    }

    #[test]
    fn the_rfc_8291_example_decrypts_to_its_message() {
        let (secret, _, auth) = ua();
        let body = BASE64URL.decode(BODY).unwrap();
        assert_eq!(
            web_push_native::decrypt(body, &secret, &auth).unwrap(),
            PLAINTEXT
        );
    }

    /// The sender's key and salt are random per message (the RFC's are fixed), so the bytes
    /// differ from the example's; the header layout and the round trip are checked instead.
    #[test]
    fn our_encryption_has_the_rfc_8291_layout_and_round_trips() {
        let (secret, public, auth) = ua();
        let body = web_push_native::encrypt(PLAINTEXT.to_vec(), &public, &auth).unwrap();
        // salt(16) || rs(4) || idlen(1) = 65 || the sender's uncompressed key || record.
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 0x04);
        assert_eq!(body.len(), 86 + PLAINTEXT.len() + 1 + 16);
        assert_eq!(
            web_push_native::decrypt(body, &secret, &auth).unwrap(),
            PLAINTEXT
        );
    }

    #[test]
    fn payload_is_bounded_and_names_the_session() {
        let long = "x".repeat(10_000);
        let p = payload("ws:abc", "run-1", &long);
        assert!(p.len() <= MAX_PLAINTEXT);
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["sessionId"], "ws:abc");
        assert_eq!(v["body"].as_str().unwrap().chars().count(), BODY_CHARS + 1);
        // Escapes make JSON longer than the text: still bounded.
        let quotes = "\u{1}".repeat(10_000);
        assert!(payload(&"s".repeat(256), "r", &quotes).len() <= MAX_PLAINTEXT);
        // The longest session id (256 characters, decision session-id-rule) of 4-byte ones.
        assert!(payload(&"😀".repeat(256), "r", &quotes).len() <= MAX_PLAINTEXT);
    }
}
