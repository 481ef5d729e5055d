//! A local push service (hyper on 127.0.0.1) that answers as push services do (201, or a
//! scripted status with `Retry-After`), and the browser's side of a subscription: a P-256 key
//! pair and auth secret, with an RFC 8291 decryption written here from the RFC (HKDF-SHA-256 and
//! AES-128-GCM), independent of the gateway's encryption code. [`verify`] checks a received
//! request the way a push service and a browser would: the VAPID JWT (ES256 with the key in
//! `k=`, `aud` the endpoint's origin, `exp` within 24 hours, `sub`), the headers, the plaintext.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use serde_json::Value;
use tokio::net::TcpListener;

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// A scripted answer: a status and headers (`Retry-After`, `Location`).
pub type Answer = (u16, Vec<(&'static str, String)>);

/// The service: records requests and answers from its script (201 when the script is empty).
#[derive(Clone)]
pub struct PushService {
    pub origin: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl PushService {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = Self {
            origin: format!("http://{}", listener.local_addr().unwrap()),
            received: Arc::default(),
            script: Arc::default(),
            arrived: Arc::default(),
        };
        let shared = service.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        service
    }

    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes().to_vec());
        let (status, headers) = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((201, Vec::new()));
        self.received.lock().unwrap().push(Received {
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body: body.unwrap_or_default(),
        });
        self.arrived.notify_waiters();
        let mut response = hyper::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(name, value);
        }
        response.body(Full::new(Bytes::new())).unwrap()
    }

    /// Answers the next requests with these statuses and headers.
    pub fn script(&self, answers: Vec<Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let arrived = self.arrived.notified();
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the push service got {} requests, expected {n}",
                received.len()
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
        }
    }
}

/// A browser's side of a subscription.
pub struct Browser {
    pub secret: p256::SecretKey,
    pub auth: [u8; 16],
}

impl Browser {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        let secret = loop {
            rand::rng().fill_bytes(&mut bytes);
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let mut auth = [0u8; 16];
        rand::rng().fill_bytes(&mut auth);
        Self { secret, auth }
    }

    pub fn p256dh(&self) -> String {
        B64.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    pub fn auth(&self) -> String {
        B64.encode(self.auth)
    }

    /// `PushSubscription.toJSON()` plus the session it follows.
    pub fn subscription(&self, endpoint: &str, session_id: &str) -> Value {
        serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh(), "auth": self.auth() },
            "sessionId": session_id,
        })
    }

    /// RFC 8291 decryption of an `aes128gcm` body (one record).
    pub fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        decrypt(body, &self.secret, &self.auth)
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

/// RFC 8291 section 3.4 and RFC 8188 section 2: header `salt(16) || rs(4) || idlen(1) ||
/// keyid(idlen)` with keyid the sender's public key, then one AES-128-GCM record ending in the
/// delimiter 0x02 and zero padding.
pub fn decrypt(body: &[u8], ua_secret: &p256::SecretKey, auth: &[u8; 16]) -> Vec<u8> {
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let idlen = body[20] as usize;
    let as_public = p256::PublicKey::from_sec1_bytes(&body[21..21 + idlen]).unwrap();
    let record = &body[21 + idlen..];
    assert!(record.len() <= rs, "one record expected");
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = ua_secret.public_key().to_encoded_point(false);
    let as_public = as_public.to_encoded_point(false);
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(as_public.as_bytes());
    let ikm = hkdf(auth, shared.raw_secret_bytes(), &key_info, 32);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
    let mut plain = cipher
        .decrypt(aes_gcm::Nonce::from_slice(&nonce), record)
        .expect("the record decrypts with the browser's keys");
    while plain.last() == Some(&0) {
        plain.pop();
    }
    assert_eq!(
        plain.pop(),
        Some(2),
        "the last record ends with delimiter 0x02"
    );
    plain
}

/// What [`verify`] checks against.
pub struct Expect<'a> {
    pub gateway_public_key: &'a str,
    pub subject: &'a str,
    pub ttl: &'a str,
}

/// Checks a push request as a push service would (VAPID, headers) and returns its plaintext
/// as JSON, decrypted as the browser would.
pub fn verify(
    received: &Received,
    service: &PushService,
    browser: &Browser,
    expect: &Expect<'_>,
) -> Value {
    let header = |name: &str| {
        received
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_owned()
    };
    assert_eq!(header("content-encoding"), "aes128gcm");
    assert_eq!(header("ttl"), expect.ttl);
    let authorization = header("authorization");
    let rest = authorization.strip_prefix("vapid ").expect("vapid scheme");
    let (mut token, mut key) = (None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t.to_owned());
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k.to_owned());
        }
    }
    let (token, key) = (token.expect("t="), key.expect("k="));
    assert_eq!(
        key, expect.gateway_public_key,
        "k= is the gateway's public key"
    );
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact token");
    let jose: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(jose["alg"], "ES256");
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims["aud"],
        service.origin.as_str(),
        "aud is the endpoint's origin"
    );
    assert_eq!(claims["sub"], expect.subject);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp > now && exp <= now + 24 * 3600, "exp within 24 hours");
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&B64.decode(&key).unwrap()).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
    verifying
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the JWT is signed by the gateway's VAPID key");
    serde_json::from_slice(&browser.decrypt(&received.body)).expect("the plaintext is JSON")
}
