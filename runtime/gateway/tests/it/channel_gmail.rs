//! Gmail push notifications through a fake Pub/Sub push: an OIDC-signed push for an allowed
//! mailbox becomes a turn whose answer is stored in the mailbox's session; bad tokens, other
//! mailboxes, redeliveries and bad bodies are handled.

use crate::support;
use crate::support::platform;

use base64::Engine;
use platform::{Answer, FORGER_KEY, FakePlatform, PLATFORM_KEY, jwks, now_secs, post, sign};
use serde_json::{Value, json};
use support::TestGateway;

const KEYS: &str = "/oauth2/v3/certs";
const AUDIENCE: &str = "https://flynn.example.com/gmail/push";
const PUSHER: &str = "gmail-push@test-project.iam.gserviceaccount.com";

async fn setup() -> (FakePlatform, TestGateway) {
    let fake = FakePlatform::start().await;
    fake.serve(KEYS, Answer::ok(jwks()));
    let gw = TestGateway::start(&format!(
        "[queue]\ndebounce_ms = 0\n\n[channels.gmail]\nenabled = true\naudience = {AUDIENCE:?}\n\
         service_account = {PUSHER:?}\njwks_url = {:?}\nallow = [\"Owner@Example.com\"]\n",
        fake.url(KEYS)
    ))
    .await;
    (fake, gw)
}

fn claims() -> Value {
    let now = now_secs();
    json!({
        "iss": "https://accounts.google.com", "aud": AUDIENCE, "iat": now, "exp": now + 3600,
        "azp": "1234567890", "email": PUSHER, "email_verified": true, "sub": "1234567890"
    })
}

fn push(id: &str, address: &str) -> Value {
    let data = json!({ "emailAddress": address, "historyId": 9876543 }).to_string();
    json!({
        "message": {
            "attributes": {},
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "messageId": id,
            "message_id": id,
            "publishTime": "2026-12-06T23:00:00.000Z",
            "publish_time": "2026-12-06T23:00:00.000Z"
        },
        "subscription": "projects/test-project/subscriptions/gmail-push"
    })
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// Waits (bounded) until the session holds `count` messages; returns its history.
async fn history(gw: &TestGateway, session: &str, count: usize) -> Vec<Value> {
    let mut ws = gw.client().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = ws
            .call("sessions.get", json!({ "sessionId": session }))
            .await;
        let history = got["result"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if history.len() >= count {
            return history;
        }
        assert!(tokio::time::Instant::now() < deadline, "{session}: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_push_becomes_a_turn_whose_answer_is_stored_in_the_mailbox_session() {
    let (_fake, gw) = setup().await;
    let token = sign(&claims(), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/gmail/push"),
        &bearer(&token),
        &push("m-1", "owner@example.com"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].clone()),
        (200, json!("turn")),
        "{body}"
    );
    let history = history(&gw, "gmail:owner@example.com", 2).await;
    assert_eq!(history[0]["role"], "user");
    let asked = history[0]["content"].as_str().unwrap();
    assert!(
        asked.contains("owner@example.com") && asked.contains("9876543"),
        "{asked}"
    );
    assert_eq!(history[1]["role"], "assistant");
    let mut ws = gw.client().await;
    let presence = ws
        .call("system.presence", json!({ "channel": "gmail" }))
        .await;
    assert_eq!(
        presence["result"]["presence"][0]["senderId"],
        "owner@example.com"
    );
}

#[tokio::test]
async fn bad_push_tokens_are_refused() {
    let (_fake, gw) = setup().await;
    let url = gw.http("/gmail/push");
    let body = push("m-1", "owner@example.com");
    assert_eq!(post(&url, &[], &body).await.0, 401);
    let mut cases = vec![("forged", sign(&claims(), FORGER_KEY))];
    for (what, field, value) in [
        ("expired", "exp", json!(now_secs() - 600)),
        (
            "wrong audience",
            "aud",
            json!("https://elsewhere.example.com/"),
        ),
        ("wrong issuer", "iss", json!("https://evil.example.com")),
        ("other account", "email", json!("someone@evil.example.com")),
        ("unverified email", "email_verified", json!(false)),
    ] {
        let mut claims = claims();
        claims[field] = value;
        cases.push((what, sign(&claims, PLATFORM_KEY)));
    }
    for (what, token) in cases {
        let (status, answer) = post(&url, &bearer(&token), &body).await;
        assert_eq!(status, 401, "{what}: {answer}");
    }
    let mut ws = gw.client().await;
    let sessions = ws.call("sessions.list", json!({})).await;
    assert!(!sessions.to_string().contains("gmail:"), "{sessions}");
}

#[tokio::test]
async fn redeliveries_and_other_mailboxes_do_nothing() {
    let (_fake, gw) = setup().await;
    let token = sign(&claims(), PLATFORM_KEY);
    let url = gw.http("/gmail/push");
    let first = push("m-dup", "owner@example.com");
    assert_eq!(
        post(&url, &bearer(&token), &first).await.1["outcome"],
        "turn"
    );
    assert_eq!(
        post(&url, &bearer(&token), &first).await.1["outcome"],
        "duplicate"
    );
    let (status, body) = post(
        &url,
        &bearer(&token),
        &push("m-other", "stranger@example.com"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].clone()),
        (200, json!("ignored")),
        "allow-list only"
    );
    let later = push("m-later", "owner@example.com");
    assert_eq!(
        post(&url, &bearer(&token), &later).await.1["outcome"],
        "turn"
    );
    let history = history(&gw, "gmail:owner@example.com", 4).await;
    assert_eq!(history.len(), 4, "two turns, not three: {history:?}");
    let mut ws = gw.client().await;
    let sessions = ws.call("sessions.list", json!({})).await;
    assert!(!sessions.to_string().contains("stranger"), "{sessions}");
}

#[tokio::test]
async fn bad_bodies_get_a_clear_json_error() {
    let (_fake, gw) = setup().await;
    let token = sign(&claims(), PLATFORM_KEY);
    let url = gw.http("/gmail/push");
    let mut bad = push("m-1", "owner@example.com");
    bad["message"]["data"] = json!("%%% not base64 %%%");
    let (status, body) = post(&url, &bearer(&token), &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("base64")
    );
    bad["message"]["data"] = json!(base64::engine::general_purpose::STANDARD.encode("not json"));
    let (status, body) = post(&url, &bearer(&token), &bad).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&url, &bearer(&token), &json!({ "subscription": "x" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], -2);
}
