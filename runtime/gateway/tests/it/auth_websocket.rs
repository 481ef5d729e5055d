//! Every way a WebSocket upgrade is authenticated or refused: no token configured, bearer
//! header, the browser subprotocol entry, missing (-4) and wrong (-5) credentials followed by
//! close 1008, the per-address failure limit (HTTP 429), Tailscale identity from a loopback
//! peer, and the browser Origin check (HTTP 403).
//!
//! A non-loopback peer cannot be produced over 127.0.0.1, so "Tailscale header ignored from a
//! remote address" is covered by the unit tests in src/auth.rs, not here.

use crate::support;

use crate::support::raw_http;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use raw_http::{refused_upgrade, ws_handshake};
use serde_json::{Value, json};
use support::{TestGateway, Ws};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "correct-horse-battery-staple";

fn token_toml(extra: &str) -> String {
    format!("token = \"{TOKEN}\"\n{extra}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn subprotocols(token: &str) -> String {
    format!(
        "flynn.v1, flynn.bearer.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    )
}

async fn assert_served(ws: &mut Ws, how: &str) {
    let info = ws.call("system.info", json!({})).await;
    assert!(
        info["result"]["version"].is_string(),
        "{how}: the connection is served: {info}"
    );
}

/// Reads what a refused connection gets: every text frame, then the close code.
async fn refusal(ws: &mut Ws) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(support::FRAME_TIMEOUT, ws.stream.next())
            .await
            .expect("the server ends a refused connection");
        match next {
            Some(Ok(Message::Text(text))) => {
                frames.push(serde_json::from_str(text.as_str()).expect("JSON frame"))
            }
            Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("connection broke instead of closing with 1008: {e}"),
            None => return (frames, None),
        }
    }
}

/// One error frame with `code` and `id: null`, then close 1008.
async fn assert_refused(url: &str, headers: &[(&str, &str)], code: i64, how: &str) {
    let mut ws = Ws::connect(url, headers)
        .await
        .unwrap_or_else(|e| panic!("{how}: the upgrade itself succeeds, got {e}"));
    let (frames, close) = refusal(&mut ws).await;
    assert_eq!(
        frames.len(),
        1,
        "{how}: exactly one error frame: {frames:?}"
    );
    assert_eq!(frames[0]["error"]["code"], code, "{how}: {}", frames[0]);
    assert_eq!(frames[0]["id"], Value::Null, "{how}: {}", frames[0]);
    assert!(frames[0]["error"]["message"].is_string());
    assert!(
        !frames[0].to_string().contains(TOKEN),
        "{how}: no token in errors"
    );
    assert_eq!(close, Some(1008), "{how}: close code");
}

#[tokio::test]
async fn without_a_token_configured_anyone_on_loopback_is_served() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    assert_served(&mut ws, "no credentials").await;
    // A bearer header that nobody asked for does no harm.
    let mut ws = Ws::connect(&gw.url(), &[("Authorization", "Bearer whatever-it-is")])
        .await
        .expect("connects");
    assert_served(&mut ws, "unneeded credentials").await;
}

#[tokio::test]
async fn bearer_header_is_accepted() {
    let gw = TestGateway::start(&token_toml("")).await;
    let mut ws = Ws::connect(&gw.url(), &[("Authorization", &bearer(TOKEN))])
        .await
        .expect("connects");
    assert_served(&mut ws, "bearer header").await;
}

#[tokio::test]
async fn subprotocol_token_is_accepted_and_never_echoed() {
    let gw = TestGateway::start(&token_toml("")).await;
    let offer = subprotocols(TOKEN);
    let (mut stream, response) = ws_handshake(&gw.url(), &[("Sec-WebSocket-Protocol", &offer)])
        .await
        .expect("the subprotocol entry authenticates");
    let selected: Vec<_> = response
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        selected,
        vec!["flynn.v1".to_owned()],
        "the server selects flynn.v1 only"
    );
    for (name, value) in response.headers() {
        let value = value.to_str().unwrap_or("");
        assert!(
            !value.contains("flynn.bearer") && !value.contains(TOKEN),
            "the token entry is never echoed ({name}: {value})"
        );
    }
    stream
        .send(Message::text(r#"{"id":1,"method":"system.info"}"#))
        .await
        .expect("send");
    let reply = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                break serde_json::from_str::<Value>(text.as_str()).expect("JSON");
            }
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    };
    assert!(reply["result"]["version"].is_string(), "{reply}");
}

#[tokio::test]
async fn missing_credentials_get_minus_four_then_1008() {
    let gw = TestGateway::start(&token_toml("")).await;
    assert_refused(&gw.url(), &[], -4, "no credentials").await;
    assert_refused(
        &gw.url(),
        &[("Authorization", "Bearer ")],
        -4,
        "an empty bearer",
    )
    .await;
    assert_refused(
        &gw.url(),
        &[("Sec-WebSocket-Protocol", "flynn.v1")],
        -4,
        "flynn.v1 without the token entry",
    )
    .await;
}

#[tokio::test]
async fn wrong_credentials_get_minus_five_then_1008() {
    let gw = TestGateway::start(&token_toml("")).await;
    assert_refused(
        &gw.url(),
        &[("Authorization", &bearer("not-the-token"))],
        -5,
        "wrong bearer",
    )
    .await;
    assert_refused(
        &gw.url(),
        &[("Authorization", &bearer(&format!("{TOKEN}x")))],
        -5,
        "the token plus one character",
    )
    .await;
    assert_refused(
        &gw.url(),
        &[("Sec-WebSocket-Protocol", &subprotocols("not-the-token"))],
        -5,
        "wrong subprotocol token",
    )
    .await;
    assert_refused(
        &gw.url(),
        &[(
            "Sec-WebSocket-Protocol",
            "flynn.v1, flynn.bearer.!!!not-base64!!!",
        )],
        -5,
        "undecodable subprotocol token",
    )
    .await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_with_429() {
    let gw = TestGateway::start(&token_toml("auth_failures_per_minute = 3")).await;
    // A connection opened before the failures is not affected by them.
    let mut before = Ws::connect(&gw.url(), &[("Authorization", &bearer(TOKEN))])
        .await
        .expect("connects");
    let wrong = bearer("guess-guess-guess");
    for attempt in 1..=3 {
        assert_refused(
            &gw.url(),
            &[("Authorization", &wrong)],
            -5,
            &format!("failed attempt {attempt}"),
        )
        .await;
    }
    let (status, body) = refused_upgrade(&gw.url(), &[("Authorization", &wrong)]).await;
    assert_eq!(
        status, 429,
        "the 4th failure within a minute is refused: {body}"
    );
    assert!(body["error"]["code"].is_i64(), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry")),
        "the message says when to retry: {body}"
    );
    assert_served(&mut before, "an open connection after the limit").await;
}

#[tokio::test]
async fn tailscale_login_from_loopback_is_accepted_when_enabled() {
    let gw = TestGateway::start(&token_toml("tailscale_identity = true")).await;
    let mut ws = Ws::connect(&gw.url(), &[("Tailscale-User-Login", "alice@example.com")])
        .await
        .expect("connects");
    assert_served(&mut ws, "Tailscale identity").await;
    assert_refused(&gw.url(), &[], -4, "no header, no token").await;
    assert_refused(
        &gw.url(),
        &[("Tailscale-User-Login", "")],
        -4,
        "an empty Tailscale login",
    )
    .await;
}

#[tokio::test]
async fn tailscale_login_is_ignored_when_disabled() {
    let gw = TestGateway::start(&token_toml("")).await;
    assert_refused(
        &gw.url(),
        &[("Tailscale-User-Login", "alice@example.com")],
        -4,
        "Tailscale header with tailscale_identity = false",
    )
    .await;
}

#[tokio::test]
async fn foreign_origins_are_refused_with_403() {
    let gw = TestGateway::start(&token_toml("allowed_origins = [\"https://app.example\"]")).await;
    let auth = bearer(TOKEN);
    let port = gw.addr.port();
    for origin in [
        "https://evil.example".to_owned(),
        "null".to_owned(),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "https://app.example.evil".to_owned(),
    ] {
        let (status, body) =
            refused_upgrade(&gw.url(), &[("Origin", &origin), ("Authorization", &auth)]).await;
        assert_eq!(status, 403, "Origin {origin}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    for origin in [
        format!("http://127.0.0.1:{port}"),
        "https://app.example".to_owned(),
    ] {
        let mut ws = Ws::connect(&gw.url(), &[("Origin", &origin), ("Authorization", &auth)])
            .await
            .unwrap_or_else(|e| panic!("Origin {origin} is allowed: {e}"));
        assert_served(&mut ws, &origin).await;
    }
}

#[tokio::test]
async fn origin_is_checked_without_a_token_too() {
    let gw = TestGateway::start("").await;
    let (status, _) = refused_upgrade(&gw.url(), &[("Origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    let same_host = format!("http://{}", gw.addr);
    let mut ws = Ws::connect(&gw.url(), &[("Origin", &same_host)])
        .await
        .expect("same host");
    assert_served(&mut ws, "same-host origin").await;
}

#[test]
fn a_non_loopback_bind_without_a_token_is_refused() {
    // Refused before anything is bound, so this opens nothing beyond loopback.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flynn-gateway"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("FLYNN_SERVER_TOKEN")
        .env_remove("FLYNN_CONFIG")
        .output()
        .expect("run flynn-gateway");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must not start: {stderr}");
    assert!(
        stderr.contains("0.0.0.0") && stderr.contains("token"),
        "the message says what is wrong and what to do: {stderr}"
    );
    assert!(
        !stderr.contains("listening on"),
        "nothing was bound: {stderr}"
    );
}

#[tokio::test]
async fn the_library_refuses_the_same_exposure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("exposed.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\ndata_dir = {:?}\n[server]\nbind = \"0.0.0.0\"\nport = 0\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .expect("write config");
    let config = flynn_gateway::Config::load(&path).expect("the file itself is valid");
    match flynn_gateway::start(config, Some(path)).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("an unauthenticated gateway was started on 0.0.0.0");
        }
        Err(e) => assert!(e.to_string().contains("token"), "{e}"),
    }
}
