//! Streaming runs, tool approval, tools and context budget over real WebSockets against the
//! in-process gateway and its embedded model (the README's "Models" section and runtime/models/README.md).

use crate::support;
use crate::support::agent as agent_support;

use std::time::{Duration, Instant};

use agent_support::*;
use serde_json::{Value, json};
use support::TestGateway;

/// A 1x1 PNG (the embedded model's own payload for `image/png`).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// Event names with consecutive repeats collapsed: `content, content, done` -> `content, done`.
fn shape(o: &Outcome) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in o.names() {
        if out.last().map(String::as_str) != Some(name) {
            out.push(name.to_owned());
        }
    }
    out
}

#[tokio::test]
async fn a_run_streams_tools_content_attachment_and_context_warnings_in_order() {
    let gw = TestGateway::start("").await;
    let s = "ws:events";
    let mut a = Conn::connect(&gw, "a").await;

    // Turn 1: a tool call, text, an attachment, and enough words to pass 70% of the 8192-token
    // window (but not 80%).
    let first =
        r#"[[tool:shell.exec {"command":"echo hi"}]] [[attach:image/png x.png]] [[long:3350]]"#;
    let id = a.send(s, first).await;
    let o = a.outcome(id).await;
    assert_eq!(
        shape(&o),
        [
            "tool_start",
            "tool_end",
            "content",
            "attachment",
            "context_warning",
            "done"
        ],
        "event order"
    );
    let start = o.first("tool_start").expect("tool_start");
    assert_eq!(
        start.data(),
        &json!({ "tool": "shell.exec", "args": { "command": "echo hi" } })
    );
    let end = o.first("tool_end").expect("tool_end");
    assert_eq!(end.data()["tool"], json!("shell.exec"));
    assert_eq!(end.data()["result"]["success"], json!(true));
    assert_eq!(end.data()["result"]["output"], json!("hi\n"));
    assert!(
        o.named("content").len() > 100,
        "the text streams in many deltas"
    );
    let attachment = o.first("attachment").expect("attachment");
    assert_eq!(
        attachment.data(),
        &json!({ "mimeType": "image/png", "data": PNG, "filename": "x.png" })
    );
    let warning = o
        .first("context_warning")
        .expect("context_warning")
        .data()
        .clone();
    assert_eq!(warning["level"], json!("warning"), "{warning}");
    let pct = warning["budget"]["usagePct"].as_f64().expect("usagePct");
    assert!((70.0..80.0).contains(&pct), "{warning}");
    assert_eq!(warning["budget"]["contextWindow"], json!(8192));
    assert_eq!(warning["budget"]["shouldCompact"], json!(false));
    assert_eq!(warning["actions"]["checkpointSaved"], json!(false));

    let content = o.content();
    assert!(
        content.starts_with("Tool shell.exec returned: hi. lorem ipsum"),
        "{}",
        &content[..80]
    );
    assert!(content.ends_with("Attached x.png (image/png)."));
    assert_eq!(o.streamed_text(), content, "the deltas add up to the reply");
    assert_eq!(
        o.first("done").expect("done").data()["content"],
        json!(content)
    );
    let usage = &o.result()["usage"];
    assert!(
        usage["inputTokens"].as_u64() > Some(0) && usage["outputTokens"].as_u64() > Some(1000),
        "{usage}"
    );
    assert_eq!(o.result()["sessionId"], json!(s));

    // Turn 2 passes 80%: a checkpoint is saved to the session's memory namespace.
    let id2 = a.send(s, "[[long:600]]").await;
    let o2 = a.outcome(id2).await;
    assert_eq!(shape(&o2), ["content", "context_warning", "done"]);
    let checkpoint = o2
        .first("context_warning")
        .expect("context_warning")
        .data()
        .clone();
    assert_eq!(checkpoint["level"], json!("checkpoint"), "{checkpoint}");
    assert!(
        checkpoint["budget"]["usagePct"].as_f64() >= Some(80.0),
        "{checkpoint}"
    );
    assert_eq!(checkpoint["budget"]["shouldCompact"], json!(true));
    let namespace = "session/checkpoints/ws/events";
    assert_eq!(checkpoint["actions"]["checkpointSaved"], json!(true));
    assert_eq!(checkpoint["actions"]["autoCompacted"], json!(false));
    assert_eq!(
        checkpoint["actions"]["checkpointNamespace"],
        json!(namespace)
    );
    assert!(
        checkpoint["message"]
            .as_str()
            .unwrap_or_default()
            .contains(namespace)
    );
    let saved = memory(&gw, namespace)
        .await
        .expect("the checkpoint is in the store's memory");
    assert!(
        saved.contains("echo hi") && saved.contains("[[long:600]]"),
        "{}",
        &saved[..200.min(saved.len())]
    );

    a.assert_seq_contiguous();
    // (`outcome` also checked that every event preceded its response.)
}

#[tokio::test]
async fn every_request_gets_its_terminal_event_before_its_response() {
    let gw = TestGateway::start("").await;
    let mut a = Conn::connect(&gw, "a").await;
    // Successful runs (`done`), one with a long burst of events the writer may lag behind, a
    // failed run (`error`) and a chat command (`done`).
    let cases = [
        ("hello", "done"),
        ("[[long:3000]]", "done"),
        ("[[fail:model exploded]]", "error"),
        ("/queue", "done"),
    ];
    let mut failures = Vec::new();
    for (i, (message, terminal)) in cases.into_iter().enumerate() {
        let id = a.send(&format!("ws:order-{i}"), message).await;
        let o = a.outcome(id).await;
        if terminal == "error" {
            assert_eq!(o.error()["code"], json!(5), "{}", o.reply.value);
            let text = o.error()["message"].as_str().unwrap_or_default();
            assert!(text.contains("model exploded"), "{text}");
            assert_eq!(event_code(&o), 5);
        } else {
            o.result();
        }
        let term = o.first(terminal).expect("terminal event");
        if term.index > o.reply.index {
            failures.push(format!(
                "{message}: `{terminal}` arrived after the response"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    a.assert_seq_contiguous();
}

#[tokio::test]
async fn an_inbound_image_attachment_reaches_the_model() {
    let gw = TestGateway::start("").await;
    let mut a = Conn::connect(&gw, "a").await;
    let attachment = json!([{ "mimeType": "image/png", "data": PNG, "filename": "dot.png" }]);
    let id = a
        .request("agent.send", json!({ "sessionId": "ws:image", "message": "what is this?", "attachments": attachment }))
        .await;
    let o = a.outcome(id).await;
    assert_eq!(
        o.content(),
        "I received 1 image (image/png). You said: what is this?"
    );
    // An attachment alone is a valid message.
    let id = a
        .request(
            "agent.send",
            json!({ "sessionId": "ws:image", "message": "", "attachments": attachment }),
        )
        .await;
    assert!(
        a.outcome(id)
            .await
            .content()
            .starts_with("I received 1 image (image/png).")
    );
}

async fn enable_approval(conn: &mut Conn, s: &str, enabled: bool) {
    let r = conn
        .ok(
            "agent.setToolUseCallback",
            json!({ "sessionId": s, "enabled": enabled }),
        )
        .await;
    assert_eq!(r, json!({ "success": true }));
}

fn tool_message(command: &str) -> String {
    format!("[[tool:shell.exec {}]]", json!({ "command": command }))
}

#[tokio::test]
async fn approved_tool_calls_run() {
    let gw = TestGateway::start("").await;
    let s = "ws:approve";
    let mut a = Conn::connect(&gw, "a").await;
    let mut other = Conn::connect(&gw, "other").await;
    enable_approval(&mut a, s, true).await;
    let id = a.send(s, &tool_message("echo approved")).await;
    let ask = a.event(id, "tool_approval").await;
    let data = ask.data().clone();
    assert_eq!(data["sessionId"], json!(s));
    assert_eq!(data["tool"], json!("shell.exec"));
    assert_eq!(data["args"], json!({ "command": "echo approved" }));
    assert_eq!(data["timeoutMs"], json!(60000));
    assert!(
        a.events(id).iter().all(|f| f.event() != Some("tool_start")),
        "nothing runs before approval"
    );

    // Any connection may answer.
    let approval_id = data["approvalId"].clone();
    let r = other
        .ok(
            "agent.approveTool",
            json!({ "approvalId": approval_id, "approved": true }),
        )
        .await;
    assert_eq!(r, json!({ "accepted": true }));
    let o = a.outcome(id).await;
    assert_eq!(
        shape(&o),
        ["tool_approval", "tool_start", "tool_end", "content", "done"]
    );
    let end = o.first("tool_end").expect("tool_end");
    assert_eq!(end.data()["result"]["success"], json!(true));
    assert_eq!(end.data()["result"]["output"], json!("approved\n"));
    assert_eq!(o.content(), "Tool shell.exec returned: approved.");
    // An answered approval cannot be answered again.
    let again = other
        .ok(
            "agent.approveTool",
            json!({ "approvalId": approval_id, "approved": false }),
        )
        .await;
    assert_eq!(again, json!({ "accepted": false }));
}

fn assert_skipped(o: &Outcome, reason_part: &str) {
    assert!(
        o.first("tool_start").is_none(),
        "a skipped tool call has no tool_start: {:?}",
        o.names()
    );
    let end = o.first("tool_end").expect("tool_end");
    assert_eq!(end.data()["result"]["success"], json!(false));
    let error = end.data()["result"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("skipped"), "{error}");
    assert!(
        error.contains(reason_part),
        "{error} should mention {reason_part}"
    );
    o.result();
}

#[tokio::test]
async fn refused_tool_calls_are_skipped() {
    let gw = TestGateway::start("").await;
    let s = "ws:refuse";
    let mut a = Conn::connect(&gw, "a").await;
    enable_approval(&mut a, s, true).await;
    let id = a.send(s, &tool_message("touch refused.marker")).await;
    let ask = a.event(id, "tool_approval").await;
    let r = a
        .ok("agent.approveTool", json!({ "approvalId": ask.data()["approvalId"], "approved": false, "reason": "not on my machine" }))
        .await;
    assert_eq!(r, json!({ "accepted": true }));
    let o = a.outcome(id).await;
    assert_skipped(&o, "not on my machine");
    assert!(
        o.content().contains("skipped"),
        "the model hears that the call was skipped: {}",
        o.content()
    );
    assert!(
        !gw.data_dir().join("workspace/refused.marker").exists(),
        "the refused command ran"
    );
}

#[tokio::test]
async fn unanswered_approvals_time_out_and_skip_the_call() {
    let gw = TestGateway::start("[agent]\napproval_timeout_ms = 300\n").await;
    let s = "ws:timeout";
    let mut a = Conn::connect(&gw, "a").await;
    enable_approval(&mut a, s, true).await;
    // Taken before the request is sent: the gateway's approval timer cannot start earlier, so
    // the skip comes at least 300 ms later whatever the load (only a lower bound is checked).
    let sent = Instant::now();
    let id = a.send(s, &tool_message("touch timeout.marker")).await;
    let ask = a.event(id, "tool_approval").await;
    assert_eq!(ask.data()["timeoutMs"], json!(300));
    let o = a.outcome(id).await;
    assert_skipped(&o, "");
    let end = o.first("tool_end").expect("tool_end");
    let waited = end.at.duration_since(sent);
    assert!(
        waited >= Duration::from_millis(300),
        "skipped after {waited:?}, before the timeout"
    );
    assert!(
        !gw.data_dir().join("workspace/timeout.marker").exists(),
        "the unapproved command ran"
    );
    let late = a
        .ok(
            "agent.approveTool",
            json!({ "approvalId": ask.data()["approvalId"], "approved": true }),
        )
        .await;
    assert_eq!(
        late,
        json!({ "accepted": false }),
        "an expired approval is not accepted"
    );
}

#[tokio::test]
async fn approve_tool_with_an_unknown_id_is_not_accepted() {
    let gw = TestGateway::start("").await;
    let mut a = Conn::connect(&gw, "a").await;
    let r = a
        .ok(
            "agent.approveTool",
            json!({ "approvalId": "appr_unknown", "approved": true }),
        )
        .await;
    assert_eq!(r, json!({ "accepted": false }));
}

#[tokio::test]
async fn disabling_approval_resolves_pending_approvals_as_refused() {
    // Spec (agent.setToolUseCallback): "`enabled: false` resolves pending approvals as refused".
    // The approval would time out after ten minutes: the run ending within the outcome's
    // generous wait (WAIT) can only be the disabling's doing.
    let gw = TestGateway::start("[agent]\napproval_timeout_ms = 600000\n").await;
    let s = "ws:disable";
    let mut a = Conn::connect(&gw, "a").await;
    let held = hold(&mut a, s).await;
    enable_approval(&mut a, s, false).await;
    let o = a.outcome(held.id).await;
    assert!(o.first("tool_end").is_some(), "a tool_end: {:?}", o.names());
    assert_skipped(&o, "");
}

#[tokio::test]
async fn approval_switches_off_when_the_enabling_connection_closes() {
    // Spec (agent.setToolUseCallback): "switched off when the connection that enabled it closes,
    // so a run never waits on nobody".
    let gw = TestGateway::start("[agent]\napproval_timeout_ms = 3000\n").await;
    let s = "ws:owner-gone";
    let mut owner = Conn::connect(&gw, "owner").await;
    let mut a = Conn::connect(&gw, "a").await;
    enable_approval(&mut owner, s, true).await;
    owner.close().await;
    // Wait (generously bounded) until the gateway has dropped the closed connection.
    let deadline = Instant::now() + WAIT;
    let mut closed = false;
    while Instant::now() < deadline {
        if a.ok("system.info", json!({})).await["connections"] == json!(1) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the gateway never noticed the closed connection");

    let id = a.send(s, &tool_message("echo no approval needed")).await;
    let o = a.outcome(id).await;
    assert!(
        o.first("tool_approval").is_none(),
        "approval is still on after its connection closed: {:?}",
        o.names()
    );
    assert_eq!(o.content(), "Tool shell.exec returned: no approval needed.");
}

#[tokio::test]
async fn tools_list_describes_shell_exec_with_a_schema_from_its_rust_type() {
    let gw = TestGateway::start("").await;
    let mut a = Conn::connect(&gw, "a").await;
    let r = a.ok("tools.list", json!({})).await;
    let shell = r["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == json!("shell.exec")))
        .unwrap_or_else(|| panic!("shell.exec not listed: {r}"))
        .clone();
    assert!(!shell["description"].as_str().unwrap_or_default().is_empty());
    let schema = &shell["inputSchema"];
    assert_eq!(schema["type"], json!("object"));
    assert_eq!(
        schema["title"],
        json!("ShellExecInput"),
        "derived from the Rust input type: {schema}"
    );
    assert_eq!(schema["required"], json!(["command"]));
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["properties"]["command"]["type"], json!("string"));
    assert_eq!(schema["properties"]["timeoutMs"]["minimum"], json!(1));
    assert!(schema["properties"].get("cwd").is_some());
}

#[tokio::test]
async fn tools_execute_runs_validates_and_obeys_the_policy() {
    let gw = TestGateway::start("[tools.shell]\ndeny = [\"rm *\"]\n").await;
    let mut a = Conn::connect(&gw, "a").await;

    let r = a
        .ok(
            "tools.execute",
            json!({ "tool": "shell.exec", "args": { "command": "echo 'Hello'" } }),
        )
        .await;
    assert_eq!(r["success"], json!(true), "{r}");
    assert_eq!(r["output"], json!("Hello\n"));
    assert!(r.get("error").is_none_or(Value::is_null), "{r}");

    let r = a
        .call(
            "tools.execute",
            json!({ "tool": "no.such.tool", "args": {} }),
        )
        .await;
    assert_eq!(r["error"]["code"], json!(2), "{r}");
    assert!(
        a.frames().iter().all(|f| f.event().is_none()),
        "tools.execute sends no events"
    );

    let r = a
        .call(
            "tools.execute",
            json!({ "tool": "shell.exec", "args": { "command": 5 } }),
        )
        .await;
    assert_eq!(r["error"]["code"], json!(-2), "{r}");
    assert_eq!(r["error"]["data"]["path"], json!("params.args.command"));
    let r = a
        .call(
            "tools.execute",
            json!({ "tool": "shell.exec", "args": { "command": "echo", "timeoutMs": 0 } }),
        )
        .await;
    assert_eq!(r["error"]["code"], json!(-2), "{r}");
    assert_eq!(r["error"]["data"]["path"], json!("params.args.timeoutMs"));
    let r = a
        .call("tools.execute", json!({ "tool": "shell.exec", "args": {} }))
        .await;
    assert_eq!(r["error"]["code"], json!(-2), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("command"),
        "{r}"
    );

    // Denied by policy: a normal result with the reason, and nothing ran.
    let workspace = gw.data_dir().join("workspace");
    std::fs::create_dir_all(&workspace).expect("workspace");
    std::fs::write(workspace.join("victim"), "keep me").expect("victim file");
    let r = a
        .ok(
            "tools.execute",
            json!({ "tool": "shell.exec", "args": { "command": "rm -f victim" } }),
        )
        .await;
    assert_eq!(r["success"], json!(false), "{r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(error.contains("rm *") && error.contains("deny"), "{error}");
    assert!(workspace.join("victim").exists(), "the denied command ran");

    // The agent's tool calls obey the same policy.
    let id = a.send("ws:policy", &tool_message("rm -f victim")).await;
    let o = a.outcome(id).await;
    let end = o.first("tool_end").expect("tool_end");
    assert_eq!(end.data()["result"]["success"], json!(false));
    assert!(
        end.data()["result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("rm *")
    );
    assert!(
        workspace.join("victim").exists(),
        "the denied command ran in a run"
    );
}

#[tokio::test]
async fn system_context_usage_lists_every_session_with_its_budget() {
    let gw = TestGateway::start("").await;
    let mut a = Conn::connect(&gw, "a").await;
    let short = a.send("ws:short", "hi").await;
    a.outcome(short).await.result();
    let long = a.send("ws:long", "[[long:1000]]").await;
    a.outcome(long).await.result();

    let r = a.ok("system.contextUsage", json!({})).await;
    let sessions = r["sessions"].as_array().unwrap_or_else(|| panic!("{r}"));
    let budget = |id: &str| -> Value {
        sessions
            .iter()
            .find(|x| x["sessionId"] == json!(id))
            .unwrap_or_else(|| panic!("{id} missing from {r}"))["budget"]
            .clone()
    };
    let (b_short, b_long) = (budget("ws:short"), budget("ws:long"));
    for b in [&b_short, &b_long] {
        let est = b["estimatedTokens"].as_u64().expect("estimatedTokens");
        assert!(est > 0);
        assert_eq!(b["contextWindow"], json!(8192));
        assert_eq!(b["remainingTokens"], json!(8192 - est));
        assert_eq!(b["thresholdPct"], json!(80.0));
        assert_eq!(b["thresholdTokens"], json!(6554));
        assert_eq!(b["shouldCompact"], json!(false));
        let pct = b["usagePct"].as_f64().expect("usagePct");
        assert!((pct - est as f64 * 100.0 / 8192.0).abs() < 0.06, "{b}");
    }
    assert!(
        b_long["estimatedTokens"].as_u64()
            > Some(b_short["estimatedTokens"].as_u64().unwrap_or(0) + 1000),
        "{b_long} vs {b_short}"
    );
}
