//! Turns started without a WebSocket request (`inbox::start_turn`, used by webhooks and chat
//! channels): they run on the embedded model, reach their events to the caller's sink, are
//! stored in the session, and a WebSocket client can follow them with `agent.attach`.

use crate::support;

use std::sync::{Arc, Mutex};

use flynn_gateway::inbox::{InboundEvents, InboundMessage, start_turn};
use serde_json::{Value, json};
use support::TestGateway;

#[derive(Default)]
struct Seen(Mutex<Vec<(String, Value)>>);

impl InboundEvents for Seen {
    fn event(&self, event: &'static str, data: &Value) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((event.to_owned(), data.clone()));
        }
    }
}

#[tokio::test]
async fn an_inbound_turn_answers_is_stored_and_can_be_attached() {
    let gw = TestGateway::start("[queue]\ndebounce_ms = 0\n").await;
    let gateway = gw.running.as_ref().unwrap().gateway.clone();
    let seen = Arc::new(Seen::default());
    let started = start_turn(
        &gateway,
        InboundMessage {
            session_id: "webhook:test".to_owned(),
            text: "Hello, Flynn!".to_owned(),
            sender_name: Some("test".to_owned()),
            may_use_tools: false,
        },
        seen.clone(),
    )
    .await
    .expect("the turn starts");
    let result = started
        .reply
        .await
        .expect("a reply")
        .expect("the turn succeeds");
    assert!(!result.content.is_empty(), "the embedded model answered");
    let events = seen.0.lock().unwrap().clone();
    let done = events
        .iter()
        .find(|(e, _)| e == "done")
        .expect("a done event");
    assert_eq!(done.1["content"], json!(result.content));

    let mut ws = gw.client().await;
    let session = ws
        .call("sessions.get", json!({ "sessionId": "webhook:test" }))
        .await;
    let text = session.to_string();
    assert!(
        text.contains("Hello, Flynn!"),
        "the message is stored: {text}"
    );
    let attached = ws
        .call("agent.attach", json!({ "sessionId": "webhook:test" }))
        .await;
    assert_eq!(
        attached["result"]["content"],
        json!(result.content),
        "a WebSocket client follows the turn it did not start: {attached}"
    );
}

#[tokio::test]
async fn an_inbound_turn_with_a_bad_session_or_empty_text_is_refused() {
    let gw = TestGateway::start("").await;
    let gateway = gw.running.as_ref().unwrap().gateway.clone();
    let message = |session: &str, text: &str| InboundMessage {
        session_id: session.to_owned(),
        text: text.to_owned(),
        sender_name: None,
        may_use_tools: false,
    };
    let events = Arc::new(flynn_gateway::inbox::Discard);
    let bad_session = start_turn(&gateway, message("bad\u{7}id", "hi"), events.clone()).await;
    assert!(
        bad_session.is_err(),
        "a session id with a control character is refused"
    );
    let empty = start_turn(&gateway, message("webhook:x", "  "), events).await;
    assert!(empty.is_err(), "an empty message is refused");
}
