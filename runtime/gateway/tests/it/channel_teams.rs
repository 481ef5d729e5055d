//! Microsoft Teams (Bot Framework) against a fake Bot Framework: OpenID metadata and JWKS, the
//! client-credentials token endpoint and the Connector API. A signed activity becomes a turn
//! whose answer is posted to the conversation (through 5xx, 429 and a cut connection); forged,
//! expired, wrong-audience and wrong-issuer tokens are refused; redeliveries and the bot's own
//! messages do nothing.

use crate::support;
use crate::support::platform;

use platform::{
    Answer, FORGER_KEY, FakePlatform, PLATFORM_KEY, jwks, keep_test_secrets, now_secs, post, sign,
};
use serde_json::{Value, json};
use support::TestGateway;

const APP_ID: &str = "11111111-2222-3333-4444-555555555555";
const METADATA: &str = "/v1/.well-known/openidconfiguration";
const KEYS: &str = "/v1/.well-known/keys";
const TOKEN: &str = "/botframework.com/oauth2/v2.0/token";
const CONVERSATION: &str = "a:1conversation-xyz";
const ACTIVITIES: &str = "/v3/conversations/a:1conversation-xyz/activities";

async fn setup() -> (FakePlatform, TestGateway) {
    keep_test_secrets();
    let fake = FakePlatform::start().await;
    fake.serve(
        METADATA,
        Answer::ok(json!({
            "issuer": "https://api.botframework.com",
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": fake.url(KEYS),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"]
        })),
    );
    fake.serve(KEYS, Answer::ok(jwks()));
    fake.serve(
        TOKEN,
        Answer::ok(json!({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
            "access_token": "bot-access-token"
        })),
    );
    fake.serve(ACTIVITIES, Answer::ok(json!({ "id": "reply-1" })));
    let gw = TestGateway::start(&format!(
        "[queue]\ndebounce_ms = 0\n\n[channels.teams]\nenabled = true\napp_id = {APP_ID:?}\n\
         app_password_env = \"FLYNN_TEST_TEAMS_PASSWORD\"\nopenid_metadata_url = {:?}\n\
         oauth_url = {:?}\nallow = [\"aad-user-1\"]\n",
        fake.url(METADATA),
        fake.url(TOKEN)
    ))
    .await;
    (fake, gw)
}

fn claims(fake: &FakePlatform) -> Value {
    let now = now_secs();
    json!({
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "exp": now + 3600,
        "nbf": now - 10,
        "serviceurl": format!("{}/", fake.base),
    })
}

fn activity(fake: &FakePlatform, id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "timestamp": "2026-12-06T23:00:00.000Z",
        "serviceUrl": format!("{}/", fake.base),
        "channelId": "msteams",
        "from": { "id": "29:1user-id", "name": "Megan Bowen", "aadObjectId": "aad-user-1" },
        "conversation": { "conversationType": "personal", "tenantId": "tenant-1", "id": CONVERSATION },
        "recipient": { "id": format!("28:{APP_ID}"), "name": "Flynn" },
        "text": text,
        "textFormat": "plain",
        "locale": "en-US"
    })
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn an_activity_becomes_a_turn_and_the_answer_is_posted_to_the_conversation() {
    let (fake, gw) = setup().await;
    fake.script(TOKEN, vec![Answer::status(500)]);
    fake.script(ACTIVITIES, vec![Answer::rate_limited(0), Answer::Cut]);
    let token = sign(&claims(&fake), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/teams/events"),
        &bearer(&token),
        &activity(&fake, "act-1", "<at>Flynn</at> Hello from Teams"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "turn");
    let posted = fake.wait_for(ACTIVITIES, 3).await;
    let reply = posted.last().unwrap();
    assert_eq!(reply.headers["authorization"], "Bearer bot-access-token");
    let reply = reply.json();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["replyToId"], "act-1");
    assert_eq!(reply["conversation"]["id"], CONVERSATION);
    assert_eq!(reply["recipient"]["id"], "29:1user-id");
    assert_eq!(reply["from"]["id"], format!("28:{APP_ID}"));
    assert!(
        reply["text"].as_str().unwrap().contains("Hello from Teams"),
        "the embedded model echoes the message without the mention: {reply}"
    );
    let token_request = fake.received(TOKEN).last().unwrap().body.clone();
    assert!(
        token_request.contains("grant_type=client_credentials"),
        "{token_request}"
    );
    assert!(token_request.contains(&format!("client_id={APP_ID}")));
    assert!(token_request.contains("client_secret=teams-client-secret"));

    let mut ws = gw.client().await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": format!("teams:{CONVERSATION}") }),
        )
        .await;
    assert!(
        session.to_string().contains("Hello from Teams"),
        "{session}"
    );
    let presence = ws
        .call("system.presence", json!({ "channel": "teams" }))
        .await;
    assert_eq!(
        presence["result"]["presence"][0]["senderId"], "aad-user-1",
        "{presence}"
    );
    assert_eq!(
        presence["result"]["presence"][0]["senderName"],
        "Megan Bowen"
    );
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let (fake, gw) = setup().await;
    let url = gw.http("/teams/events");
    let message = activity(&fake, "act-1", "hi");
    let (status, body) = post(&url, &[], &message).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!(-4)),
        "{body}"
    );

    let mut cases = Vec::new();
    cases.push(("forged", sign(&claims(&fake), FORGER_KEY)));
    let mut expired = claims(&fake);
    expired["exp"] = json!(now_secs() - 3600);
    cases.push(("expired", sign(&expired, PLATFORM_KEY)));
    let mut audience = claims(&fake);
    audience["aud"] = json!("another-bot");
    cases.push(("wrong audience", sign(&audience, PLATFORM_KEY)));
    let mut issuer = claims(&fake);
    issuer["iss"] = json!("https://sts.windows.net/evil/");
    cases.push(("wrong issuer", sign(&issuer, PLATFORM_KEY)));
    let mut service = claims(&fake);
    service["serviceurl"] = json!("https://smba.trafficmanager.net/amer/");
    cases.push(("other serviceUrl", sign(&service, PLATFORM_KEY)));
    cases.push(("garbage", "not.a.jwt".to_owned()));
    for (what, token) in cases {
        let (status, body) = post(&url, &bearer(&token), &message).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], -5, "{what}: {body}");
    }
    assert!(fake.received(ACTIVITIES).is_empty());
    let mut ws = gw.client().await;
    let sessions = ws.call("sessions.list", json!({})).await;
    assert!(!sessions.to_string().contains("teams:"), "{sessions}");
}

#[tokio::test]
async fn unreachable_keys_are_503_so_the_platform_retries() {
    let (fake, gw) = setup().await;
    fake.serve(METADATA, Answer::status(500));
    let token = sign(&claims(&fake), PLATFORM_KEY);
    let (status, body) = post(
        &gw.http("/teams/events"),
        &bearer(&token),
        &activity(&fake, "act-1", "hi"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn a_redelivered_activity_is_answered_once() {
    let (fake, gw) = setup().await;
    let token = sign(&claims(&fake), PLATFORM_KEY);
    let url = gw.http("/teams/events");
    let first = activity(&fake, "act-dup", "Once only");
    assert_eq!(
        post(&url, &bearer(&token), &first).await.1["outcome"],
        "turn"
    );
    assert_eq!(
        post(&url, &bearer(&token), &first).await.1["outcome"],
        "duplicate"
    );
    let later = activity(&fake, "act-later", "Later");
    assert_eq!(
        post(&url, &bearer(&token), &later).await.1["outcome"],
        "turn"
    );
    let posted = fake.wait_for(ACTIVITIES, 2).await;
    assert_eq!(posted.len(), 2, "one answer per activity");
    assert_eq!(posted[0].json()["replyToId"], "act-dup");
    assert_eq!(posted[1].json()["replyToId"], "act-later");
}

#[tokio::test]
async fn the_bots_own_activities_and_other_types_are_ignored() {
    let (fake, gw) = setup().await;
    let token = sign(&claims(&fake), PLATFORM_KEY);
    let url = gw.http("/teams/events");
    let mut echo = activity(&fake, "act-echo", "my own words");
    echo["from"] = json!({ "id": format!("28:{APP_ID}"), "name": "Flynn" });
    let (status, body) = post(&url, &bearer(&token), &echo).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("ignored")));
    let mut update = activity(&fake, "act-update", "");
    update["type"] = json!("conversationUpdate");
    let (status, body) = post(&url, &bearer(&token), &update).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("ignored")));
    let mut stranger = activity(&fake, "act-stranger", "who am I");
    stranger["from"] = json!({ "id": "29:2other", "name": "Stranger", "aadObjectId": "aad-other" });
    let (_, body) = post(&url, &bearer(&token), &stranger).await;
    assert_eq!(
        body["outcome"], "gated",
        "an unknown sender is asked to pair"
    );
    let posted = fake.wait_for(ACTIVITIES, 1).await;
    assert!(
        posted[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("pairing code")
    );
    assert_eq!(posted[0].json()["recipient"]["id"], "29:2other");
}

#[tokio::test]
async fn a_refused_bot_token_is_renewed_once() {
    let (fake, gw) = setup().await;
    fake.script(ACTIVITIES, vec![Answer::status(401)]);
    let token = sign(&claims(&fake), PLATFORM_KEY);
    let (_, body) = post(
        &gw.http("/teams/events"),
        &bearer(&token),
        &activity(&fake, "act-1", "hello"),
    )
    .await;
    assert_eq!(body["outcome"], "turn");
    let posted = fake.wait_for(ACTIVITIES, 2).await;
    assert_eq!(posted.len(), 2);
    assert_eq!(
        fake.received(TOKEN).len(),
        2,
        "the cached token was dropped after the 401 and a new one fetched"
    );
}
