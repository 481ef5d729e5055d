//! A deliberately wrong server (a tiny tokio-tungstenite fixture that answers `system.info`
//! with `"uptime": "soon"`) fails the suite with messages that name the field, in the library
//! report and in every output of the command line. A wrong HTTP server (a raw HTTP/1.1 fixture)
//! fails the `http` steps: a wrong status, a body that breaks the x-http schema, a route the
//! spec does not declare.

use crate::support;

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use flynn_conformance::report::FailureKind;
use flynn_conformance::run::{RunOptions, run_all};
use flynn_conformance::spec::Spec;
use flynn_conformance::transcript::load_all;

/// Answers system.info with a string uptime and every other method with -3.
async fn wrong_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let request: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    let reply = match request["method"].as_str() {
                        Some("system.info") => {
                            json!({"id": request["id"], "result": {"version": "0.0.1", "uptime": "soon", "connections": 1}})
                        }
                        _ => json!({"id": request["id"], "error": {"code": -3, "message": "no"}}),
                    };
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn transcript() -> std::path::PathBuf {
    support::crate_dir().join("transcripts/auth-none.jsonl")
}

#[tokio::test]
async fn a_wrong_field_fails_with_its_json_path() {
    let addr = wrong_server().await;
    let spec = Spec::load().unwrap();
    let transcripts = load_all(&[transcript()]).unwrap();
    let report = run_all(
        &spec,
        &transcripts,
        &RunOptions::new(format!("ws://{addr}/")),
    )
    .await;
    assert!(!report.passed());
    let failures = &report.transcripts[0].failures;
    let mismatch = failures
        .iter()
        .find(|f| f.kind == FailureKind::Mismatch)
        .expect("a mismatch against the transcript");
    assert_eq!(mismatch.path.as_deref(), Some("result.uptime"));
    assert!(
        mismatch
            .message
            .contains("expected integer, received string"),
        "{}",
        mismatch.message
    );
    assert_eq!(mismatch.received, Some(json!("soon")));
    let spec_failure = failures
        .iter()
        .find(|f| f.kind == FailureKind::Spec)
        .expect("a spec violation on the wire");
    assert_eq!(spec_failure.path.as_deref(), Some("result.uptime"));
    assert!(
        report.to_text().contains("mismatch at result.uptime"),
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn the_command_reports_text_json_and_junit_and_exits_non_zero() {
    let addr = wrong_server().await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let bin = env!("CARGO_BIN_EXE_flynn-conformance");
    let url = format!("ws://{addr}/");
    let text = tokio::process::Command::new(bin)
        .args(["run", "--url", &url, "--junit"])
        .arg(&junit)
        .arg(transcript())
        .output()
        .await
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("FAIL auth-none"), "{stdout}");
    assert!(stdout.contains("mismatch at result.uptime"), "{stdout}");
    assert!(stdout.contains("received: \"soon\""), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase name=\"auth-none\""), "{xml}");
    assert!(
        xml.contains("<failure type=\"mismatch\" message=\"line"),
        "{xml}"
    );
    assert!(xml.contains("at result.uptime"), "{xml}");

    let json_run = tokio::process::Command::new(bin)
        .args(["run", "--json", "--url", &url])
        .arg(transcript())
        .output()
        .await
        .unwrap();
    assert_eq!(json_run.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&json_run.stdout).unwrap();
    assert_eq!(report["summary"]["failed"], 1);
    let paths: Vec<&str> = report["transcripts"][0]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(paths.contains(&"result.uptime"), "{paths:?}");
}

#[tokio::test]
async fn the_command_fails_cleanly_on_a_broken_transcript_and_passes_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"type\":\"header\",\"name\":\"broken\"}\n{\"type\":\"expect\",\"frame\":{\"id\":1,\"result\":{\"$tpye\":\"x\"}}}\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_flynn-conformance");
    let out = tokio::process::Command::new(bin)
        .arg("validate")
        .arg(&broken)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a transcript that does not load is a usage error"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jsonl:2") && stderr.contains("$tpye"),
        "{stderr}"
    );

    let wrong = dir.path().join("wrong.jsonl");
    std::fs::write(&wrong, "{\"type\":\"header\",\"name\":\"wrong\"}\n{\"type\":\"send\",\"frame\":{\"id\":1,\"method\":\"system.info\"}}\n{\"type\":\"expect\",\"frame\":{\"id\":1,\"result\":{\"uptime\":\"soon\"}}}\n").unwrap();
    let out = tokio::process::Command::new(bin)
        .arg("validate")
        .arg(&wrong)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("spec at result.uptime"));

    let out = tokio::process::Command::new(bin)
        .arg("validate")
        .arg(support::crate_dir().join("transcripts"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An HTTP/1.1 server that answers `GET /health` with a string uptime, `/api/health` with a 500
/// whose body is no error object, and anything else with 200 `{}`; one request per connection.
async fn wrong_http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let (status, body) = match path.as_str() {
                    "/health" => (
                        "200 OK",
                        r#"{"status":"ok","version":"0.0.1","uptime":"soon"}"#,
                    ),
                    "/api/health" => ("500 Internal Server Error", r#"{"oops":true}"#),
                    _ => ("200 OK", "{}"),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_wrong_http_answer_fails_with_its_status_and_schema_path() {
    let addr = wrong_http_server().await;
    let spec = Spec::load().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.jsonl");
    std::fs::write(
        &secret,
        "{\"type\":\"header\",\"name\":\"secret\"}\n{\"type\":\"http\",\"request\":{\"method\":\"GET\",\"path\":\"/secret\"},\"response\":{\"status\":200}}\n",
    )
    .unwrap();
    let transcripts = load_all(&[
        support::crate_dir().join("transcripts/http-health.jsonl"),
        secret,
    ])
    .unwrap();
    let report = run_all(
        &spec,
        &transcripts,
        &RunOptions::new(format!("ws://{addr}/")),
    )
    .await;
    let text = report.to_text();
    assert_eq!(report.summary.failed, 2, "{text}");
    let health = &report.transcripts[0].failures;
    let has = |kind: FailureKind, path: &str, line: usize| {
        health
            .iter()
            .any(|f| f.kind == kind && f.path.as_deref() == Some(path) && f.line == line)
    };
    assert!(has(FailureKind::Mismatch, "body.uptime", 2), "{text}");
    assert!(has(FailureKind::Spec, "body.uptime", 2), "{text}");
    assert!(has(FailureKind::Mismatch, "status", 3), "{text}");
    assert!(
        has(FailureKind::Spec, "body", 3),
        "an error body that is no error object: {text}"
    );
    assert!(text.contains("expected 200, received 500"), "{text}");
    let secret = &report.transcripts[1].failures;
    assert_eq!(secret.len(), 1, "{text}");
    assert_eq!(secret[0].kind, FailureKind::Spec);
    assert!(
        secret[0]
            .message
            .contains("GET /secret: not declared in x-http"),
        "{text}"
    );
}
