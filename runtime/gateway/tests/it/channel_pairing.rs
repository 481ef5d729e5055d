//! Pairing of unknown chat senders, end to end through the BlueBubbles channel and its fake
//! server: asked once, a wrong code refused, a code from `pairing.generate` pairs (and is used
//! up), later messages reach the agent, presence shows the sender; wrong codes lock out.

use crate::support;
use crate::support::platform;

use platform::{Answer, FakePlatform, Recorded, keep_test_secrets, post};
use serde_json::{Value, json};
use support::TestGateway;

const SEND: &str = "/api/v1/message/text";

async fn gateway(fake: &FakePlatform) -> TestGateway {
    keep_test_secrets();
    fake.serve(SEND, Answer::ok(json!({ "status": 200 })));
    TestGateway::start(&format!(
        "[queue]\ndebounce_ms = 0\n\n[channels]\nwrong_code_limit = 2\n\n[channels.bluebubbles]\n\
         enabled = true\nserver_url = {:?}\npassword_env = \"FLYNN_TEST_BB_PASSWORD\"\n",
        fake.base
    ))
    .await
}

fn webhook(guid: &str, from: &str, text: &str) -> Value {
    json!({
        "type": "new-message",
        "data": {
            "guid": guid, "text": text, "isFromMe": false,
            "handle": { "address": from },
            "chats": [{ "guid": format!("iMessage;-;{from}") }]
        }
    })
}

/// Replies sent to `from`'s chat.
fn replies_to(fake: &FakePlatform, from: &str) -> Vec<String> {
    fake.received(SEND)
        .iter()
        .map(Recorded::json)
        .filter(|r| r["chatGuid"] == format!("iMessage;-;{from}"))
        .map(|r| r["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Waits (bounded) until a reply to `from` contains `needle`.
async fn reply_containing(fake: &FakePlatform, from: &str, needle: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let replies = replies_to(fake, from);
        if replies.iter().any(|r| r.contains(needle)) {
            return replies;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reply with {needle:?}: {replies:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_unknown_sender_pairs_with_a_code_and_then_reaches_the_agent() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake).await;
    let url = gw.http("/bluebubbles/events?password=bb-server-password");
    let who = "+15557770001";

    let (status, body) = post(&url, &[], &webhook("p-1", who, "Hi, who are you?")).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("gated")));
    reply_containing(&fake, who, "pairing code").await;
    let (_, body) = post(&url, &[], &webhook("p-2", who, "Hello? Anyone?")).await;
    assert_eq!(body["outcome"], "ignored");

    let wrong = post(&url, &[], &webhook("p-3", who, "ZZZZ2222")).await.1;
    assert_eq!(wrong["outcome"], "gated");
    let replies = reply_containing(&fake, who, "not valid").await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.contains("Ask the owner"))
            .count(),
        1,
        "asked once, not on every message: {replies:?}"
    );

    let mut ws = gw.client().await;
    let generated = ws
        .call("pairing.generate", json!({ "channel": "bluebubbles" }))
        .await;
    let code = generated["result"]["code"].as_str().unwrap().to_owned();
    let (_, body) = post(&url, &[], &webhook("p-4", who, &code.to_lowercase())).await;
    assert_eq!(body["outcome"], "gated");
    reply_containing(&fake, who, "Paired").await;
    let codes = ws.call("pairing.list", json!({})).await;
    assert!(
        !codes.to_string().contains(&code),
        "the code is used up: {codes}"
    );

    let (_, body) = post(&url, &[], &webhook("p-5", who, "Now can we talk?")).await;
    assert_eq!(body["outcome"], "turn");
    reply_containing(&fake, who, "Now can we talk?").await;
    let session = ws
        .call(
            "sessions.get",
            json!({ "sessionId": format!("bluebubbles:iMessage;-;{who}") }),
        )
        .await;
    let history = session["result"]["history"].to_string();
    assert!(history.contains("Now can we talk?"), "{history}");
    assert!(
        !history.contains("Hi, who are you?"),
        "gated messages never reach the agent"
    );

    let presence = ws
        .call("system.presence", json!({ "channel": "bluebubbles" }))
        .await;
    let entries = presence["result"]["presence"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{presence}");
    assert_eq!(entries[0]["senderId"], who);
    assert_eq!(
        entries[0]["messageCount"], 5,
        "every message counts: {presence}"
    );

    // A code for another channel does not pair here.
    let other = ws
        .call("pairing.generate", json!({ "channel": "teams" }))
        .await;
    let other = other["result"]["code"].as_str().unwrap().to_owned();
    let stranger = "+15557770009";
    post(&url, &[], &webhook("p-6", stranger, &other)).await;
    reply_containing(&fake, stranger, "not valid").await;
}

#[tokio::test]
async fn wrong_codes_lock_the_sender_out() {
    let fake = FakePlatform::start().await;
    let gw = gateway(&fake).await;
    let url = gw.http("/bluebubbles/events?password=bb-server-password");
    let who = "+15557770002";
    post(&url, &[], &webhook("w-1", who, "AAAA2222")).await;
    reply_containing(&fake, who, "1 tries left").await;
    post(&url, &[], &webhook("w-2", who, "BBBB3333")).await;
    reply_containing(&fake, who, "wait").await;
    let mut ws = gw.client().await;
    let generated = ws
        .call("pairing.generate", json!({ "channel": "bluebubbles" }))
        .await;
    let code = generated["result"]["code"].as_str().unwrap().to_owned();
    post(&url, &[], &webhook("w-3", who, &code)).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while replies_to(&fake, who).len() < 3 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let replies = replies_to(&fake, who);
    assert!(
        replies[2].contains("wait"),
        "locked out even with a good code: {replies:?}"
    );
    let codes = ws.call("pairing.list", json!({})).await;
    assert!(
        codes.to_string().contains(&code),
        "a locked-out sender does not use up the code"
    );
}
