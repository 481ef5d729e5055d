//! Delivery authenticity: HMAC-SHA256 over the raw body, in the Standard Webhooks scheme or
//! GitHub's. Tags are compared in constant time (`subtle`), against every configured key (secret
//! rotation) and, for Standard Webhooks, every `v1` signature of the header (the sender's
//! rotation).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::config::Scheme;

type HmacSha256 = Hmac<Sha256>;

/// Longest delivery id accepted; ids are stored for replay protection.
pub const MAX_DELIVERY_ID_CHARS: usize = 256;
/// Most signatures looked at in one `webhook-signature` header.
const MAX_SIGNATURES: usize = 16;

/// Why a delivery was not accepted as authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing; a signed hook needs {1}")]
    Missing(&'static str, &'static str),
    #[error("the {0} header is malformed: {1}")]
    Malformed(&'static str, &'static str),
    #[error(
        "no signature matches the body with the hook's secret(s); check the secret and sign the raw body as sent"
    )]
    BadSignature,
    #[error(
        "webhook-timestamp is {0} s in the past, beyond the hook's tolerance; check the sender's clock (a replayed delivery looks like this too)"
    )]
    Stale(i64),
    #[error(
        "webhook-timestamp is {0} s in the future, beyond the hook's tolerance; check the sender's clock"
    )]
    Future(i64),
}

impl SignatureError {
    /// The reason named in the error body and the metrics outcome.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing(..) | Self::Malformed(..) => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::Stale(_) => "stale_timestamp",
            Self::Future(_) => "future_timestamp",
        }
    }
}

/// A delivery that passed: the id to check against replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub delivery_id: String,
}

/// Checks `body` and `headers` under `scheme` with any of `keys`, at `now_secs`.
pub fn verify(
    scheme: Scheme,
    keys: &[Vec<u8>],
    headers: &http::HeaderMap,
    body: &[u8],
    tolerance_secs: u64,
    now_secs: i64,
) -> Result<Verified, SignatureError> {
    match scheme {
        Scheme::StandardWebhooks => verify_standard(keys, headers, body, tolerance_secs, now_secs),
        Scheme::Github => verify_github(keys, headers, body),
    }
}

const STANDARD_NEEDS: &str =
    "webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks)";
const GITHUB_NEEDS: &str = "X-Hub-Signature-256 and X-GitHub-Delivery";

fn header<'a>(
    headers: &'a http::HeaderMap,
    name: &'static str,
    needs: &'static str,
) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .ok_or(SignatureError::Missing(name, needs))?
        .to_str()
        .map_err(|_| SignatureError::Malformed(name, "not visible ASCII"))
}

/// A delivery id: 1-256 visible ASCII characters without `.` (the Standard Webhooks signed
/// content is `.`-delimited).
fn delivery_id(value: &str, name: &'static str) -> Result<String, SignatureError> {
    let ok = (1..=MAX_DELIVERY_ID_CHARS).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'.');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(SignatureError::Malformed(
            name,
            "an id is 1-256 visible ASCII characters without `.`",
        ))
    }
}

fn verify_standard(
    keys: &[Vec<u8>],
    headers: &http::HeaderMap,
    body: &[u8],
    tolerance_secs: u64,
    now_secs: i64,
) -> Result<Verified, SignatureError> {
    let id = delivery_id(header(headers, "webhook-id", STANDARD_NEEDS)?, "webhook-id")?;
    let timestamp_text = header(headers, "webhook-timestamp", STANDARD_NEEDS)?;
    let signatures = header(headers, "webhook-signature", STANDARD_NEEDS)?;
    if timestamp_text.is_empty() || !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(
            "webhook-timestamp",
            "it is integer seconds since the Unix epoch",
        ));
    }
    let timestamp: i64 = timestamp_text.parse().map_err(|_| {
        SignatureError::Malformed(
            "webhook-timestamp",
            "it is integer seconds since the Unix epoch",
        )
    })?;
    let provided: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .take(MAX_SIGNATURES)
        .filter_map(|(_, sig)| base64::engine::general_purpose::STANDARD.decode(sig).ok())
        .collect();
    if provided.is_empty() {
        return Err(SignatureError::Malformed(
            "webhook-signature",
            "no `v1,<base64>` entry (a space-separated list)",
        ));
    }
    let matched = keys.iter().any(|key| {
        let tag = standard_tag(key, &id, timestamp_text, body);
        provided.iter().any(|sig| tag_matches(tag, sig))
    });
    if !matched {
        return Err(SignatureError::BadSignature);
    }
    let tolerance = i64::try_from(tolerance_secs).unwrap_or(i64::MAX);
    let age = now_secs.saturating_sub(timestamp);
    if age > tolerance {
        return Err(SignatureError::Stale(age));
    }
    if -age > tolerance {
        return Err(SignatureError::Future(-age));
    }
    Ok(Verified { delivery_id: id })
}

fn verify_github(
    keys: &[Vec<u8>],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Verified, SignatureError> {
    let signature = header(headers, "x-hub-signature-256", GITHUB_NEEDS)?;
    let id = delivery_id(
        header(headers, "x-github-delivery", GITHUB_NEEDS)?,
        "X-GitHub-Delivery",
    )?;
    let provided = signature
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(SignatureError::Malformed(
            "X-Hub-Signature-256",
            "it is `sha256=` followed by the hex HMAC-SHA256 of the body",
        ))?;
    let matched = keys
        .iter()
        .any(|key| tag_matches(github_tag(key, body), &provided));
    if matched {
        Ok(Verified { delivery_id: id })
    } else {
        Err(SignatureError::BadSignature)
    }
}

/// HMAC-SHA256 of `parts` concatenated. `None` only if the key were refused, which HMAC never
/// does (any length is a valid key); a `None` matches no signature.
fn tag(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

/// The tag of Standard Webhooks' signed content, `{id}.{timestamp}.{body}`.
fn standard_tag(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Option<[u8; 32]> {
    tag(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

fn github_tag(key: &[u8], body: &[u8]) -> Option<[u8; 32]> {
    tag(key, &[body])
}

/// Constant-time equality of a computed tag and a provided signature (a length difference
/// is not secret and answers at once).
fn tag_matches(tag: Option<[u8; 32]>, provided: &[u8]) -> bool {
    tag.is_some_and(|tag| bool::from(tag.as_slice().ct_eq(provided)))
}

/// The `webhook-signature` entry a Standard Webhooks sender puts for `key`: `v1,<base64>`.
/// Used by the tests and handy for writing a sender.
pub fn sign_standard(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = standard_tag(key, id, &timestamp.to_string(), body).unwrap_or_default();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The `X-Hub-Signature-256` value GitHub sends for `key`: `sha256=<hex>`.
pub fn sign_github(key: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(github_tag(key, body).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::config::key_from_secret;

    // The Standard Webhooks reference libraries' vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn key() -> Vec<u8> {
        key_from_secret(Scheme::StandardWebhooks, SECRET).unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        map
    }

    fn standard(signature: &str, timestamp: i64) -> http::HeaderMap {
        headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &timestamp.to_string()),
            ("webhook-signature", signature),
        ])
    }

    #[test]
    fn the_reference_vector_signs_and_verifies() {
        assert_eq!(sign_standard(&key(), ID, TIMESTAMP, BODY), SIGNATURE);
        let ok = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &standard(SIGNATURE, TIMESTAMP),
            BODY,
            300,
            TIMESTAMP + 10,
        );
        assert_eq!(
            ok,
            Ok(Verified {
                delivery_id: ID.to_owned()
            })
        );
    }

    #[test]
    fn one_matching_signature_among_several_passes_and_none_fails() {
        let others = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        let with = format!("{others} {SIGNATURE} v1a,abc");
        let check = |sig: &str| {
            verify(
                Scheme::StandardWebhooks,
                &[key()],
                &standard(sig, TIMESTAMP),
                BODY,
                300,
                TIMESTAMP,
            )
        };
        assert!(check(&with).is_ok());
        assert_eq!(check(others), Err(SignatureError::BadSignature));
        // A second configured key (rotation) is tried too.
        let other_key = vec![7u8; 32];
        let rotated = verify(
            Scheme::StandardWebhooks,
            &[other_key, key()],
            &standard(SIGNATURE, TIMESTAMP),
            BODY,
            300,
            TIMESTAMP,
        );
        assert!(rotated.is_ok());
    }

    #[test]
    fn a_changed_body_or_a_timestamp_out_of_tolerance_fails() {
        let tampered = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &standard(SIGNATURE, TIMESTAMP),
            b"{}",
            300,
            TIMESTAMP,
        );
        assert_eq!(tampered, Err(SignatureError::BadSignature));
        let stale = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &standard(SIGNATURE, TIMESTAMP),
            BODY,
            300,
            TIMESTAMP + 301,
        );
        assert_eq!(stale, Err(SignatureError::Stale(301)));
        let future = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &standard(SIGNATURE, TIMESTAMP),
            BODY,
            300,
            TIMESTAMP - 301,
        );
        assert_eq!(future, Err(SignatureError::Future(301)));
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let none = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &http::HeaderMap::new(),
            BODY,
            300,
            TIMESTAMP,
        );
        assert!(matches!(
            none,
            Err(SignatureError::Missing("webhook-id", _))
        ));
        let bad_ts = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", "1.5"),
            ("webhook-signature", SIGNATURE),
        ]);
        let bad = verify(
            Scheme::StandardWebhooks,
            &[key()],
            &bad_ts,
            BODY,
            300,
            TIMESTAMP,
        );
        assert!(matches!(
            bad,
            Err(SignatureError::Malformed("webhook-timestamp", _))
        ));
        let dotted = headers(&[
            ("webhook-id", "a.b"),
            ("webhook-timestamp", "1"),
            ("webhook-signature", SIGNATURE),
        ]);
        assert!(verify(Scheme::StandardWebhooks, &[key()], &dotted, BODY, 300, 1).is_err());
    }

    #[test]
    fn github_signatures_follow_githubs_documented_example() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        let key = b"It's a Secret to Everybody".to_vec();
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_github(&key, b"Hello, World!"), expected);
        let ok = headers(&[
            ("x-hub-signature-256", expected),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]);
        assert!(
            verify(
                Scheme::Github,
                std::slice::from_ref(&key),
                &ok,
                b"Hello, World!",
                300,
                0
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                Scheme::Github,
                std::slice::from_ref(&key),
                &ok,
                b"Hello",
                300,
                0
            ),
            Err(SignatureError::BadSignature)
        );
        let no_id = headers(&[("x-hub-signature-256", expected)]);
        assert!(matches!(
            verify(Scheme::Github, &[key], &no_id, b"Hello, World!", 300, 0),
            Err(SignatureError::Missing("x-github-delivery", _))
        ));
    }
}
