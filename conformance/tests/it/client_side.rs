//! Client conformance: `serve` plays transcripts to the generated Rust client
//! (`flynn_protocol::Client` over `ws_client::WsTransport`), which must send exactly the
//! transcripts' requests and decode every frame it is played; and a client that sends a wrong
//! param is reported with the param's path.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use flynn_conformance::report::{FailureKind, Report};
use flynn_conformance::serve::{ServeOptions, Server};
use flynn_conformance::spec::Spec;
use flynn_conformance::transcript::load_all;
use flynn_protocol::types::{self, Attachment};
use flynn_protocol::ws_client::{ConnectOptions, WsTransport};
use flynn_protocol::{Client, Event};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

async fn serve(names: &[&str]) -> (String, tokio::task::JoinHandle<Report>) {
    let paths: Vec<_> = names
        .iter()
        .map(|n| support::crate_dir().join(format!("transcripts/{n}.jsonl")))
        .collect();
    let transcripts = load_all(&paths).unwrap();
    let mut options = ServeOptions::new("127.0.0.1:0".parse().unwrap());
    options.idle_timeout = Duration::from_secs(20);
    let server = Server::bind(options).await.unwrap();
    let url = format!("ws://{}", server.local_addr().unwrap());
    let spec = Arc::new(Spec::load().unwrap());
    (url, tokio::spawn(server.run(spec, transcripts)))
}

async fn client(base: &str, transcript: &str) -> Client<WsTransport> {
    let transport =
        WsTransport::connect(&format!("{base}/{transcript}"), ConnectOptions::default())
            .await
            .unwrap();
    Client::new(transport)
}
/// A session id for the typed client's params (`types::SessionId` checks the spec's rule).
fn sid(id: impl AsRef<str>) -> flynn_protocol::types::SessionId {
    let id = id.as_ref();
    id.parse()
        .unwrap_or_else(|e| panic!("{id:?} is a valid session id: {e}"))
}

fn send(message: &str, session: &str) -> types::AgentSendParams {
    types::AgentSendParams {
        attachments: Vec::new(),
        idempotency_key: None,
        message: message.to_owned(),
        session: None,
        session_id: Some(sid(session)),
    }
}

/// Reads a streaming call to its end: (event names, concatenated content, result).
async fn stream(
    call: flynn_protocol::wire::Streaming<types::AgentSendResult>,
) -> (Vec<String>, String, types::AgentSendResult) {
    let mut call = call;
    let mut names = Vec::new();
    let mut text = String::new();
    while let Some(event) = call.next_event().await {
        let (event, seq) = event.expect("every played event decodes");
        assert!(seq.is_some(), "serve numbers events");
        if let Event::Content(c) = &event {
            text.push_str(&c.text);
        }
        names.push(event_name(&event).to_owned());
    }
    (
        names,
        text,
        call.finish().await.expect("the result decodes"),
    )
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Content(_) => "content",
        Event::ToolStart(_) => "tool_start",
        Event::ToolEnd(_) => "tool_end",
        Event::Attachment(_) => "attachment",
        Event::ContextWarning(_) => "context_warning",
        Event::Done(_) => "done",
        Event::Error(_) => "error",
        Event::ToolApproval(_) => "tool_approval",
        Event::Unknown { .. } => "unknown",
    }
}

#[tokio::test]
async fn the_generated_client_passes_served_transcripts() {
    let (base, report) = serve(&[
        "system",
        "agent-send",
        "agent-tools",
        "tool-approval-granted",
        "canvas",
    ])
    .await;

    play_system(&base).await;
    play_agent_send(&base).await;
    play_agent_tools(&base).await;
    play_tool_approval_granted(&base).await;
    play_canvas(&base).await;

    let report = report.await.unwrap();
    assert!(report.passed(), "{}", report.to_text());
    assert_eq!(report.summary.passed, 5, "{}", report.to_text());
}

/// `system`: info, capabilities, config get and reload.
async fn play_system(base: &str) {
    let c = client(base, "system").await;
    let info = c.system_info(Default::default()).await.unwrap();
    assert_eq!(info.version, "0.1.0");
    let caps = c.system_capabilities(Default::default()).await.unwrap();
    assert_eq!(caps.protocol.version.get(), 1);
    c.config_get(Default::default()).await.unwrap();
    assert!(c.config_reload(Default::default()).await.unwrap().success);
    drop(c);
}

/// `agent-send`: streamed sends (session alias, an image attachment), rejected params, session delete.
async fn play_agent_send(base: &str) {
    let c = client(base, "agent-send").await;
    let mut alias = send("Hello, Flynn!", "telegram:123456");
    alias.session = alias.session_id.take();
    let (_, text, result) = stream(c.agent_send_streaming(alias).await.unwrap()).await;
    assert_eq!(text, result.content);
    let mut image = send("What's the weather?", "telegram:123456");
    image.attachments.push(Attachment {
        mime_type: "image/jpeg".into(),
        data: "base64encodedimage...".into(),
        filename: None,
    });
    let (names, _, result) = stream(c.agent_send_streaming(image).await.unwrap()).await;
    assert_eq!(names.last().map(String::as_str), Some("done"));
    assert!(result.content.starts_with("I received 1 image"));
    stream(
        c.agent_send_streaming(send("Also check tomorrow.", "telegram:123456"))
            .await
            .unwrap(),
    )
    .await;
    let mut both = send("hi", "telegram:123456");
    both.session = Some(sid("telegram:654321"));
    let err = c.agent_send(both).await.unwrap_err();
    assert!(
        matches!(err, flynn_protocol::wire::ClientError::Rpc(ref e) if e.code == -2),
        "{err}"
    );
    let err = c
        .agent_send(send("   ", "telegram:123456"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, flynn_protocol::wire::ClientError::Rpc(ref e) if e.code == -2),
        "{err}"
    );
    let deleted = c
        .sessions_delete(types::SessionsDeleteParams {
            session_id: sid("telegram:123456"),
        })
        .await
        .unwrap();
    assert!(deleted.success);
    drop(c);
}

/// `agent-tools`: a tool call and an attachment in the stream.
async fn play_agent_tools(base: &str) {
    let c = client(base, "agent-tools").await;
    let (names, _, result) = stream(
        c.agent_send_streaming(send(
            "Say hi [[tool:shell.exec {\"command\":\"echo hi\"}]]",
            "conformance:tools",
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        names,
        ["tool_start", "tool_end", "content", "content", "done"]
    );
    assert_eq!(result.content, "Tool shell.exec returned: hi.");
    let (names, _, _) = stream(
        c.agent_send_streaming(send(
            "Draw a dot [[attach:image/png dot.png]]",
            "conformance:tools",
        ))
        .await
        .unwrap(),
    )
    .await;
    assert!(names.contains(&"attachment".to_owned()));
    c.sessions_delete(types::SessionsDeleteParams {
        session_id: sid("conformance:tools"),
    })
    .await
    .unwrap();
    drop(c);
}

/// `tool-approval-granted`: the approval asked first, granted once (a second answer is not accepted).
async fn play_tool_approval_granted(base: &str) {
    let c = client(base, "tool-approval-granted").await;
    let on = c
        .agent_set_tool_use_callback(types::AgentSetToolUseCallbackParams {
            session_id: Some(sid("telegram:123456")),
            enabled: true,
        })
        .await
        .unwrap();
    assert!(on.success);
    let mut call = c
        .agent_send_streaming(send(
            "Say hi [[tool:shell.exec {\"command\":\"echo hi\"}]]",
            "telegram:123456",
        ))
        .await
        .unwrap();
    let approval = match call.next_event().await.unwrap().unwrap().0 {
        Event::ToolApproval(a) => a,
        other => panic!("expected tool_approval first, got {other:?}"),
    };
    assert_eq!(approval.tool, "shell.exec");
    let answer = types::AgentApproveToolParams {
        approval_id: approval.approval_id.clone(),
        approved: true,
        reason: None,
    };
    assert!(c.agent_approve_tool(answer.clone()).await.unwrap().accepted);
    let (names, _, _) = stream(call).await;
    assert_eq!(
        names,
        ["tool_start", "tool_end", "content", "content", "done"]
    );
    assert!(!c.agent_approve_tool(answer).await.unwrap().accepted);
    c.agent_set_tool_use_callback(types::AgentSetToolUseCallbackParams {
        session_id: Some(sid("telegram:123456")),
        enabled: false,
    })
    .await
    .unwrap();
    c.sessions_delete(types::SessionsDeleteParams {
        session_id: sid("telegram:123456"),
    })
    .await
    .unwrap();
    drop(c);
}

/// `canvas`: put, get, list, delete and clear artifacts of a session.
async fn play_canvas(base: &str) {
    let c = client(base, "canvas").await;
    let session = "ws:abc123".to_owned();
    let missing = c
        .canvas_list(types::CanvasListParams {
            session_id: sid(&session),
            limit: std::num::NonZeroU64::new(20).unwrap(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(missing, flynn_protocol::wire::ClientError::Rpc(ref e) if e.code == 1),
        "{missing}"
    );
    c.sessions_create(types::SessionsCreateParams {
        session_id: Some(sid(&session)),
    })
    .await
    .unwrap();
    canvas_artifacts(&c, &session).await;
    c.sessions_delete(types::SessionsDeleteParams {
        session_id: sid(&session),
    })
    .await
    .unwrap();
    drop(c);
}

/// The artifact lifecycle of `canvas` in `session`: created, replaced, got, listed, deleted,
/// and cleared.
async fn canvas_artifacts(c: &Client<WsTransport>, session: &str) {
    assert!(
        c.canvas_put(note(session, "Draft Summary", "summary-card"))
            .await
            .unwrap()
            .created
    );
    assert!(
        !c.canvas_put(note(session, "Draft Summary v2", "summary-card"))
            .await
            .unwrap()
            .created
    );
    let got = c
        .canvas_get(types::CanvasGetParams {
            session_id: sid(session),
            artifact_id: "summary-card".into(),
        })
        .await
        .unwrap();
    assert_eq!(got.artifact.title.as_deref(), Some("Draft Summary v2"));
    assert_eq!(
        c.canvas_list(types::CanvasListParams {
            session_id: sid(session),
            limit: std::num::NonZeroU64::new(20).unwrap()
        })
        .await
        .unwrap()
        .artifacts
        .len(),
        1
    );
    assert!(
        c.canvas_delete(types::CanvasDeleteParams {
            session_id: sid(session),
            artifact_id: "summary-card".into()
        })
        .await
        .unwrap()
        .deleted
    );
    assert!(
        c.canvas_get(types::CanvasGetParams {
            session_id: sid(session),
            artifact_id: "summary-card".into()
        })
        .await
        .is_err()
    );
    c.canvas_put(note(session, "Draft Summary", "a2"))
        .await
        .unwrap();
    assert_eq!(
        c.canvas_clear(types::CanvasClearParams {
            session_id: sid(session)
        })
        .await
        .unwrap()
        .deleted,
        1
    );
}

/// A `note` artifact to put.
fn note(session: &str, title: &str, id: &str) -> types::CanvasPutParams {
    types::CanvasPutParams {
        session_id: sid(session),
        artifact_id: id.into(),
        type_: "note".into(),
        title: Some(title.into()),
        content: serde_json::from_value(serde_json::json!({"markdown": "## Notes"})).unwrap(),
        metadata: serde_json::from_value(serde_json::json!({"lane": "analysis"})).unwrap(),
    }
}

#[tokio::test]
async fn a_client_that_sends_a_wrong_param_is_reported_with_its_path() {
    let (base, report) = serve(&["auth-none"]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}/auth-none"))
        .await
        .unwrap();
    ws.send(Message::text(
        r#"{"id":1,"method":"system.info","params":{"verbose":true}}"#,
    ))
    .await
    .unwrap();
    // The played reply arrives; then the client leaves.
    let _ = futures_util::StreamExt::next(&mut ws).await;
    ws.close(None).await.unwrap();
    let report = report.await.unwrap();
    assert!(!report.passed());
    let failures = &report.transcripts[0].failures;
    assert!(
        failures.iter().any(|f| f.kind == FailureKind::Mismatch && f.path.as_deref() == Some("params.verbose")),
        "{}",
        report.to_text()
    );
    assert!(
        failures
            .iter()
            .any(|f| f.kind == FailureKind::Spec && f.path.as_deref() == Some("params")),
        "{}",
        report.to_text()
    );
}

/// `run` (the client side of every transcript) against `serve` (the server side of the same
/// transcripts): both must pass, which shows every transcript can be played to a client.
async fn run_against_serve(
    names: Vec<std::path::PathBuf>,
    token: Option<&str>,
) -> (Report, Report) {
    let transcripts = load_all(&names).unwrap();
    let mut options = ServeOptions::new("127.0.0.1:0".parse().unwrap());
    options.token = token.map(str::to_owned);
    options.idle_timeout = Duration::from_secs(20);
    options.linger = Duration::from_millis(50);
    let server = Server::bind(options).await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let spec = Arc::new(Spec::load().unwrap());
    let served = tokio::spawn(server.run(spec.clone(), transcripts.clone()));
    let mut run = flynn_conformance::run::RunOptions::new(url);
    run.token = token.map(str::to_owned);
    run.settle = Duration::from_millis(50);
    let ran = flynn_conformance::run::run_all(&spec, &transcripts, &run).await;
    (ran, served.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transcript_plays_both_sides_against_itself() {
    let all = support::transcripts();
    // `serve` plays no HTTP (README, "HTTP steps"): those transcripts are checked below.
    let (token, open): (Vec<_>, Vec<_>) = all
        .iter()
        .filter(|t| !has_http_steps(t))
        .partition(|t| t.header.gateway.auth == flynn_conformance::transcript::AuthNeed::Token);
    let paths = |set: Vec<&flynn_conformance::transcript::Transcript>| {
        set.into_iter().map(|t| t.path.clone()).collect::<Vec<_>>()
    };
    let (ran, served) = run_against_serve(paths(open), None).await;
    assert!(
        ran.passed() && ran.summary.skipped == 0,
        "{}",
        ran.to_text()
    );
    assert!(served.passed(), "{}", served.to_text());
    let (ran, served) = run_against_serve(paths(token), Some(support::TOKEN)).await;
    assert!(
        ran.passed() && ran.summary.skipped == 0,
        "{}",
        ran.to_text()
    );
    assert!(served.passed(), "{}", served.to_text());
    // The four auth transcripts and the three scope ones.
    assert_eq!(served.summary.passed, 7);
}

fn has_http_steps(t: &flynn_conformance::transcript::Transcript) -> bool {
    t.steps
        .iter()
        .any(|s| matches!(s.kind, flynn_conformance::transcript::StepKind::Http(_)))
}

/// `serve` does not play HTTP: a transcript of `http` steps only is skipped with a note that
/// says so, and the serve run ends without waiting for a client.
#[tokio::test]
async fn serve_skips_http_transcripts_and_says_why() {
    let http: Vec<_> = support::transcripts()
        .into_iter()
        .filter(has_http_steps)
        .collect();
    assert!(http.len() >= 5, "the HTTP transcripts");
    let server = Server::bind(ServeOptions::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let spec = Arc::new(Spec::load().unwrap());
    let report = server.run(spec, http.clone()).await;
    assert!(report.passed(), "{}", report.to_text());
    assert_eq!(report.summary.skipped, http.len());
    assert!(
        report.to_text().contains("serve plays the WebSocket side"),
        "{}",
        report.to_text()
    );
}
