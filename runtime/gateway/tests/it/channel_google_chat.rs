//! Google Chat against a fake Google: the Chat JWKS (project-number tokens), Google's OIDC keys
//! (endpoint-URL tokens), the OAuth token endpoint and the Chat API. A MESSAGE event is answered
//! in the HTTP response when the turn ends in the window, else through the Chat API with a
//! service-account token; bad tokens are refused; redeliveries and bots do nothing.

use crate::support;
use crate::support::agent as agent_support;
use crate::support::platform;

use platform::{
    Answer, FORGER_KEY, FakePlatform, PLATFORM_KEY, PLATFORM_KEY_N, jwks, keep_test_secrets,
    now_secs, post, sign,
};
use serde_json::{Value, json};
use support::TestGateway;

const PROJECT: &str = "123456789012";
const KEYS: &str = "/service_accounts/v1/metadata/jwk/chat@system.gserviceaccount.com";
const OIDC_KEYS: &str = "/oauth2/v3/certs";
const TOKEN: &str = "/token";
const MESSAGES: &str = "/v1/spaces/AAAA/messages";

async fn setup(extra: &str) -> (FakePlatform, TestGateway) {
    keep_test_secrets();
    let fake = FakePlatform::start().await;
    fake.serve(KEYS, Answer::ok(jwks()));
    fake.serve(OIDC_KEYS, Answer::ok(jwks()));
    fake.serve(
        TOKEN,
        Answer::ok(json!({ "access_token": "chat-access-token", "expires_in": 3599, "token_type": "Bearer" })),
    );
    fake.serve(
        MESSAGES,
        Answer::ok(json!({ "name": "spaces/AAAA/messages/reply" })),
    );
    let gw = TestGateway::start(&format!(
        "[queue]\ndebounce_ms = 0\n\n[channels.google_chat]\nenabled = true\naudience = {PROJECT:?}\n\
         jwks_url = {:?}\noidc_jwks_url = {:?}\noauth_url = {:?}\napi_url = {:?}\n\
         service_account_key_env = \"FLYNN_TEST_CHAT_KEY\"\nallow = [\"users/111\"]\n{extra}",
        fake.url(KEYS),
        fake.url(OIDC_KEYS),
        fake.url(TOKEN),
        fake.base
    ))
    .await;
    (fake, gw)
}

fn claims() -> Value {
    let now = now_secs();
    json!({ "iss": "chat@system.gserviceaccount.com", "aud": PROJECT, "iat": now, "exp": now + 3600 })
}

fn event(name: &str, user: &str, text: &str) -> Value {
    json!({
        "type": "MESSAGE",
        "eventTime": "2026-12-06T23:00:00.000Z",
        "message": {
            "name": format!("spaces/AAAA/messages/{name}"),
            "sender": { "name": user, "displayName": "Ann", "email": "ann@example.com", "type": "HUMAN" },
            "text": format!("@Flynn {text}"),
            "argumentText": format!(" {text}"),
            "thread": { "name": "spaces/AAAA/threads/TTTT" },
            "space": { "name": "spaces/AAAA", "type": "ROOM" }
        },
        "user": { "name": user, "displayName": "Ann", "email": "ann@example.com", "type": "HUMAN" },
        "space": { "name": "spaces/AAAA", "type": "ROOM", "displayName": "Team room" }
    })
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn a_message_is_answered_in_the_http_response_when_the_turn_is_quick() {
    let (fake, gw) = setup("").await;
    let token = sign(&claims(), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/google-chat/events"),
        &bearer(&token),
        &event("m1", "users/111", "Hello from Chat"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["text"].as_str().unwrap().contains("Hello from Chat"),
        "the synchronous answer is the turn's: {body}"
    );
    assert!(fake.received(MESSAGES).is_empty(), "no API call needed");
    let mut ws = gw.client().await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": "googlechat:spaces/AAAA" }),
        )
        .await;
    assert!(session.to_string().contains("Hello from Chat"), "{session}");
}

#[tokio::test]
async fn a_slow_turn_is_answered_through_the_chat_api() {
    let (fake, gw) = setup("sync_reply_secs = 1\n").await;
    fake.script(TOKEN, vec![Answer::rate_limited(0)]);
    fake.script(MESSAGES, vec![Answer::status(503), Answer::Cut]);
    // Hold the space's lane with an operator's turn waiting for tool approval: the Chat
    // message queues behind it and cannot finish within the window.
    let mut conn = agent_support::Conn::connect(&gw, "operator").await;
    let held = agent_support::hold(&mut conn, "googlechat:spaces/AAAA").await;
    let token = sign(&claims(), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/google-chat/events"),
        &bearer(&token),
        &event("m-slow", "users/111", "Take your time"),
    )
    .await;
    assert_eq!((status, body.clone()), (200, json!({})), "{body}");
    agent_support::release(&mut conn, &held).await;
    let posted = fake.wait_for(MESSAGES, 3).await;
    let last = posted.last().unwrap();
    assert_eq!(last.headers["authorization"], "Bearer chat-access-token");
    assert!(
        last.target
            .contains("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
    );
    let reply = last.json();
    assert_eq!(reply["thread"]["name"], "spaces/AAAA/threads/TTTT");
    assert!(
        reply["text"].as_str().unwrap().contains("Take your time"),
        "{reply}"
    );

    let request = fake.received(TOKEN).last().unwrap().body.clone();
    let form: std::collections::HashMap<String, String> = request
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
        .collect();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[fake.url(TOKEN)]);
    let key = jsonwebtoken::DecodingKey::from_rsa_components(PLATFORM_KEY_N, "AQAB").unwrap();
    let assertion = jsonwebtoken::decode::<Value>(&form["assertion"], &key, &validation)
        .expect("the assertion is signed by the service account key");
    assert_eq!(
        assertion.claims["iss"],
        "flynn-bot@test-project.iam.gserviceaccount.com"
    );
    assert_eq!(
        assertion.claims["scope"],
        "https://www.googleapis.com/auth/chat.bot"
    );
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let (fake, gw) = setup("").await;
    let url = gw.http("/google-chat/events");
    let message = event("m1", "users/111", "hi");
    let (status, _) = post(&url, &[], &message).await;
    assert_eq!(status, 401);
    let mut cases = vec![("forged", sign(&claims(), FORGER_KEY))];
    let mut expired = claims();
    expired["exp"] = json!(now_secs() - 600);
    cases.push(("expired", sign(&expired, PLATFORM_KEY)));
    let mut audience = claims();
    audience["aud"] = json!("999");
    cases.push(("wrong audience", sign(&audience, PLATFORM_KEY)));
    let mut issuer = claims();
    issuer["iss"] = json!("https://accounts.google.com");
    cases.push(("wrong issuer", sign(&issuer, PLATFORM_KEY)));
    for (what, token) in cases {
        let (status, body) = post(&url, &bearer(&token), &message).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    assert!(fake.received(MESSAGES).is_empty());
}

#[tokio::test]
async fn endpoint_url_tokens_must_come_from_the_chat_service_account() {
    let (_fake, gw) = setup("audience_type = \"endpoint_url\"\n").await;
    // The audience is still the configured string; here it stands for the endpoint URL.
    let now = now_secs();
    let mut id_token = json!({
        "iss": "https://accounts.google.com", "aud": PROJECT, "iat": now, "exp": now + 3600,
        "email": "chat@system.gserviceaccount.com", "email_verified": true
    });
    let url = gw.http("/google-chat/events");
    let (status, body) = post(
        &url,
        &bearer(&sign(&id_token, PLATFORM_KEY)),
        &event("m1", "users/111", "hi"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    id_token["email"] = json!("someone@example.com");
    let (status, body) = post(
        &url,
        &bearer(&sign(&id_token, PLATFORM_KEY)),
        &event("m2", "users/111", "hi"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn a_shared_verification_token_is_accepted_instead_of_a_jwt() {
    let (_fake, gw) = setup("verification_token_env = \"FLYNN_TEST_CHAT_TOKEN\"\n").await;
    let message = event("m1", "users/111", "hi");
    let (status, body) = post(
        &gw.http("/google-chat/events?token=chat-shared-token"),
        &[],
        &message,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &gw.http("/google-chat/events?token=wrong"),
        &[],
        &event("m2", "users/111", "hi"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn redeliveries_bots_and_other_events_get_an_empty_answer() {
    let (_fake, gw) = setup("").await;
    let token = sign(&claims(), PLATFORM_KEY);
    let url = gw.http("/google-chat/events");
    let first = event("m-dup", "users/111", "Just once");
    let (_, body) = post(&url, &bearer(&token), &first).await;
    assert!(body["text"].is_string(), "{body}");
    let (status, body) = post(&url, &bearer(&token), &first).await;
    assert_eq!((status, body), (200, json!({})));
    let mut bot = event("m-bot", "users/999", "beep");
    bot["user"]["type"] = json!("BOT");
    assert_eq!(post(&url, &bearer(&token), &bot).await.1, json!({}));
    let mut odd = event("m-odd", "users/111", "hi");
    odd["space"]["name"] = json!("spaces/../../v1/other");
    let (status, answer) = post(&url, &bearer(&token), &odd).await;
    assert_eq!(status, 400, "{answer}");
    let added = json!({ "type": "ADDED_TO_SPACE", "space": { "name": "spaces/AAAA" }, "user": { "name": "users/111" } });
    assert_eq!(post(&url, &bearer(&token), &added).await.1, json!({}));
    let mut ws = gw.client().await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": "googlechat:spaces/AAAA" }),
        )
        .await;
    let history = session["result"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "one turn: {session}");
}

#[tokio::test]
async fn an_unknown_user_is_asked_to_pair_in_the_response() {
    let (_fake, gw) = setup("").await;
    let token = sign(&claims(), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/google-chat/events"),
        &bearer(&token),
        &event("m1", "users/222", "hello?"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["text"].as_str().unwrap().contains("pairing code"),
        "{body}"
    );
}
