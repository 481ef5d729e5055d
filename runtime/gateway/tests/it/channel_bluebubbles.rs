//! BlueBubbles (iMessage) channel against a fake BlueBubbles server: webhook in, a turn on the
//! embedded model, the answer out through `message/text` (with 429, 5xx and a cut connection
//! on the way), token checks, redeliveries, the account's own echo and bad input.

use crate::support;
use crate::support::platform;

use platform::{Answer, FakePlatform, keep_test_secrets, post, post_raw};
use serde_json::{Value, json};
use support::TestGateway;

const SEND: &str = "/api/v1/message/text";

async fn gateway(fake: &FakePlatform, extra: &str) -> TestGateway {
    keep_test_secrets();
    TestGateway::start(&format!(
        "[queue]\ndebounce_ms = 0\n\n[channels.bluebubbles]\nenabled = true\nserver_url = {:?}\n\
         password_env = \"FLYNN_TEST_BB_PASSWORD\"\nallow = [\"+15550001\"]\n{extra}",
        fake.base
    ))
    .await
}

fn webhook(guid: &str, from: &str, text: &str, from_me: bool) -> Value {
    json!({
        "type": "new-message",
        "data": {
            "guid": guid,
            "text": text,
            "isFromMe": from_me,
            "dateCreated": 1739700000000u64,
            "handle": { "address": from, "service": "iMessage" },
            "chats": [{ "guid": format!("iMessage;-;{from}"), "displayName": "" }]
        }
    })
}

fn events_url(gw: &TestGateway, token: &str) -> String {
    gw.http(&format!("/bluebubbles/events?password={token}"))
}

#[tokio::test]
async fn a_message_becomes_a_turn_and_the_answer_goes_back_through_retries() {
    let fake = FakePlatform::start().await;
    fake.script(
        SEND,
        vec![Answer::rate_limited(0), Answer::status(503), Answer::Cut],
    );
    fake.serve(
        SEND,
        Answer::ok(json!({ "status": 200, "message": "Message sent!" })),
    );
    let gw = gateway(&fake, "").await;
    let (status, body) = post(
        &events_url(&gw, "bb-server-password"),
        &[],
        &webhook("msg-1", "+15550001", "Hello from iMessage", false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "ok": true, "outcome": "turn" }));
    let sent = fake.wait_for(SEND, 4).await;
    let last = sent.last().unwrap();
    assert!(
        last.target.contains("password=bb-server-password"),
        "the REST call carries the server password: {}",
        last.target
    );
    let reply = last.json();
    assert_eq!(reply["chatGuid"], "iMessage;-;+15550001");
    assert_eq!(reply["method"], "apple-script");
    assert!(!reply["message"].as_str().unwrap().is_empty(), "{reply}");
    assert!(reply["tempGuid"].as_str().unwrap().starts_with("flynn-"));

    let mut ws = gw.client().await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": "bluebubbles:iMessage;-;+15550001" }),
        )
        .await;
    assert!(
        session.to_string().contains("Hello from iMessage"),
        "{session}"
    );
    let presence = ws
        .call("system.presence", json!({ "channel": "bluebubbles" }))
        .await;
    assert_eq!(
        presence["result"]["presence"][0]["senderId"], "+15550001",
        "{presence}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake, "").await;
    let message = webhook("msg-1", "+15550001", "hi", false);
    let (status, body) = post(&gw.http("/bluebubbles/events"), &[], &message).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("token"),
        "{body}"
    );
    let (status, _) = post(&events_url(&gw, "wrong"), &[], &message).await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &gw.http("/bluebubbles/events"),
        &[("authorization", "Bearer bb-server-password".to_owned())],
        &webhook("msg-2", "+15550001", "hi", true),
    )
    .await;
    assert_eq!(status, 200, "a bearer header carries the token too");
    assert!(fake.received(SEND).is_empty());
}

#[tokio::test]
async fn a_separate_webhook_token_replaces_the_password() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake, "webhook_token_env = \"FLYNN_TEST_BB_WEBHOOK\"\n").await;
    let message = webhook("msg-1", "+15550001", "hi", true);
    let (status, _) = post(&events_url(&gw, "bb-server-password"), &[], &message).await;
    assert_eq!(
        status, 401,
        "the password is not the webhook token any more"
    );
    let (status, body) = post(
        &gw.http("/bluebubbles/events?token=bb-webhook-token"),
        &[],
        &message,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_redelivery_is_answered_once() {
    let fake = FakePlatform::start().await;
    fake.serve(SEND, Answer::ok(json!({ "status": 200 })));
    let gw = gateway(&fake, "").await;
    let url = events_url(&gw, "bb-server-password");
    let first = webhook("msg-dup", "+15550001", "Only once please", false);
    assert_eq!(post(&url, &[], &first).await.1["outcome"], "turn");
    assert_eq!(post(&url, &[], &first).await.1["outcome"], "duplicate");
    let later = webhook("msg-later", "+15550001", "Second message", false);
    assert_eq!(post(&url, &[], &later).await.1["outcome"], "turn");
    // Turns of one chat run in order: had the redelivery started a turn, its answer would come
    // before the later message's.
    fake.wait_for(SEND, 2).await;
    let mut ws = gw.client().await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": "bluebubbles:iMessage;-;+15550001" }),
        )
        .await;
    assert_eq!(
        session
            .to_string()
            .matches("\"content\":\"Only once please\"")
            .count(),
        1,
        "{session}"
    );
    assert_eq!(fake.received(SEND).len(), 2);
}

#[tokio::test]
async fn the_accounts_own_messages_and_other_events_are_ignored() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake, "").await;
    let url = events_url(&gw, "bb-server-password");
    let (status, body) = post(
        &url,
        &[],
        &webhook("echo-1", "+15550001", "my own reply", true),
    )
    .await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("ignored")));
    let typing = json!({ "type": "typing-indicator", "data": { "display": true, "guid": "x" } });
    let (status, body) = post(&url, &[], &typing).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("ignored")));
    let mut ws = gw.client().await;
    let sessions = ws.call("sessions.list", json!({})).await;
    assert!(!sessions.to_string().contains("bluebubbles:"), "{sessions}");
    assert!(fake.received(SEND).is_empty());
}

#[tokio::test]
async fn bad_input_gets_a_clear_json_error() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake, "").await;
    let url = events_url(&gw, "bb-server-password");
    let (status, body) = post_raw(&url, &[], "{not json".to_owned()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], -2);
    let (status, body) = post(&url, &[], &json!({ "type": "new-message" })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("data"),
        "{body}"
    );
    let (status, body) = post_raw(&url, &[], "x".repeat(300 * 1024)).await;
    assert_eq!(status, 413, "{body}");
}

#[tokio::test]
async fn a_disabled_channel_is_404_naming_the_key() {
    let gw = TestGateway::start("").await;
    let (status, body) = post(&gw.http("/bluebubbles/events"), &[], &json!({})).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("channels.bluebubbles.enabled"),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_password_is_not_retried() {
    let fake = FakePlatform::start().await;
    fake.script(SEND, vec![Answer::status(401)]);
    fake.serve(SEND, Answer::ok(json!({ "status": 200 })));
    let gw = gateway(&fake, "").await;
    let url = events_url(&gw, "bb-server-password");
    post(&url, &[], &webhook("msg-1", "+15550001", "first", false)).await;
    fake.wait_for(SEND, 1).await;
    // The next message's answer is the second call: the 401 was not retried.
    post(&url, &[], &webhook("msg-2", "+15550001", "second", false)).await;
    let sent = fake.wait_for(SEND, 2).await;
    assert!(
        sent[1].json()["message"]
            .as_str()
            .unwrap()
            .contains("second"),
        "{:?}",
        sent[1]
    );
}
