//! A gateway killed with SIGKILL during a turn (decision resumable-runs): the generated Rust
//! client over `ResumingWsTransport` reconnects to the restarted daemon (same port, same data
//! directory), rejoins its turn with `agent.attach`, and reports it interrupted (code 4, saying
//! so), never done; a repeat of its `idempotencyKey` says the same and runs nothing.

use crate::support;
use crate::support::sid;

use crate::support::process;

use flynn_protocol::types::AgentSendParams;
use flynn_protocol::wire::{ClientError, Streaming};
use flynn_protocol::ws_client::{ConnectOptions, ResumingWsTransport};
use flynn_protocol::{Client, Event};
use process::GatewayProcess;
use serde_json::json;
use support::Ws;

const SESSION: &str = "ws:resume-kill";
const KEY: &str = "k-kill-9";
/// A turn that streams for a long while (about 200 words, 200 ms apart): it is surely running
/// when the test kills the daemon after its first chunk.
const SLOW: &str = "killed mid-turn [[delay:200]] [[long:200]]";

fn keyed_send() -> AgentSendParams {
    AgentSendParams {
        attachments: Vec::new(),
        idempotency_key: Some(KEY.to_owned()),
        message: SLOW.to_owned(),
        session: None,
        session_id: Some(sid(SESSION)),
    }
}

/// Reads a streamed call to its end: the names of its events and its outcome.
async fn drain<R: serde::de::DeserializeOwned>(
    mut call: Streaming<R>,
    until_first_content: Option<tokio::sync::oneshot::Sender<()>>,
) -> (Vec<String>, Result<R, ClientError>) {
    let mut names = Vec::new();
    let mut first = until_first_content;
    while let Some(event) = call.next_event().await {
        let (event, _) = event.expect("events decode");
        if matches!(event, Event::Content(_))
            && let Some(tx) = first.take()
        {
            let _ = tx.send(());
        }
        names.push(event.name().to_owned());
    }
    (names, call.finish().await)
}

fn assert_interrupted<R: std::fmt::Debug>(
    what: &str,
    names: &[String],
    outcome: Result<R, ClientError>,
) {
    assert!(
        !names.iter().any(|n| n == "done"),
        "{what}: never done, events {names:?}"
    );
    match outcome {
        Err(ClientError::Rpc(e)) => {
            assert_eq!(e.code, 4, "{what}: RequestCancelled, got {e:?}");
            assert!(e.message.contains("interrupted"), "{what}: {}", e.message);
        }
        other => panic!("{what}: interrupted expected, got {other:?} after {names:?}"),
    }
    assert_eq!(
        names.last().map(String::as_str),
        Some("error"),
        "{what}: the turn ends with its error event: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_turn_is_reported_interrupted_never_done() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut gateway = GatewayProcess::spawn(&data, &[], &[]).await;
    let port = gateway.addr.port();

    let transport = ResumingWsTransport::connect(&gateway.url(), ConnectOptions::default())
        .await
        .expect("connects");
    let client = Client::new(transport);
    let call = client
        .agent_send_streaming(keyed_send())
        .await
        .expect("the send starts");
    let (started, first_content) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(drain(call, Some(started)));
    tokio::time::timeout(std::time::Duration::from_secs(60), first_content)
        .await
        .expect("the turn streams")
        .expect("the reader is alive");

    let status = gateway.kill9().await;
    assert!(!status.success(), "killed by SIGKILL: {status:?}");
    // The client is reconnecting to the port meanwhile; the daemon comes back on it.
    let gateway = GatewayProcess::spawn_on_port(port, &data, &[], &[]).await;

    let (names, outcome) = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
        .await
        .expect("the stream ends after the restart")
        .expect("the reader finishes");
    assert!(
        names.first().is_some_and(|n| n == "content"),
        "the turn had started: {names:?}"
    );
    assert_interrupted("the rejoined stream", &names, outcome);

    // The same key again, on the restarted daemon: interrupted too, and no second turn.
    let again = client
        .agent_send_streaming(keyed_send())
        .await
        .expect("the repeat starts");
    let (names, outcome) = drain(again, None).await;
    assert_interrupted("the repeated key", &names, outcome);

    let mut ws = Ws::connect(&gateway.url(), &[]).await.expect("connects");
    let got = ws
        .call(
            "sessions.get",
            json!({ "sessionId": SESSION, "historyLimit": 100 }),
        )
        .await;
    let history = got["result"]["history"].as_array().expect("history");
    let users = history
        .iter()
        .filter(|m| m["role"] == json!("user") && m["content"] == json!(SLOW))
        .count();
    assert_eq!(users, 1, "the message was stored once: {history:?}");
    assert!(
        got["result"]["runId"].is_null(),
        "no turn runs after the restart: {got}"
    );
}
