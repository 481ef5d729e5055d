//! Issue 13, `POST /webhooks/:name`: the daemon binary as a process (the hooks' secrets come
//! from its environment, as in production), real HTTP clients, the store on disk.

use crate::support;

use crate::support::process;

use crate::support::raw_http;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use flynn_gateway::webhooks::Scheme;
use flynn_gateway::webhooks::config::key_from_secret;
use flynn_gateway::webhooks::signature::{sign_github, sign_standard};
use process::GatewayProcess;
use serde_json::{Value, json};
use support::Ws;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// base64 of `flynn-webhooks-test-secret-key-1` (32 bytes).
const STD_SECRET: &str = "whsec_Zmx5bm4td2ViaG9va3MtdGVzdC1zZWNyZXQta2V5LTE=";
/// base64 of `flynn-webhooks-test-secret-key-2`: the secret being rotated in.
const STD_NEW_SECRET: &str = "whsec_Zmx5bm4td2ViaG9va3MtdGVzdC1zZWNyZXQta2V5LTI=";
const GH_SECRET: &str = "gh-secret-for-flynn-tests-7c1d";
const TOKEN: &str = "flynn-token-webhooks-9f3e2a";

/// Every secret in a form that must never show (the raw key bytes included).
const SECRET_FORMS: &[&str] = &[
    "Zmx5bm4td2ViaG9va3MtdGVzdC1zZWNyZXQta2V5LTE",
    "Zmx5bm4td2ViaG9va3MtdGVzdC1zZWNyZXQta2V5LTI",
    "flynn-webhooks-test-secret-key",
    GH_SECRET,
    TOKEN,
];

const ENVS: &[(&str, &str)] = &[
    ("HOOK_STD_SECRET", STD_SECRET),
    ("HOOK_STD_NEW_SECRET", STD_NEW_SECRET),
    ("HOOK_GH_SECRET", GH_SECRET),
];

const HOOKS: &str = r#"
[queue]
debounce_ms = 0

[logging]
level = "debug"

[webhooks.std]
secret_env = ["HOOK_STD_SECRET", "HOOK_STD_NEW_SECRET"]
max_body_bytes = 2048

[webhooks.gh]
scheme = "github"
secret_env = "HOOK_GH_SECRET"
session_pointer = "/repository/name"
template = "GitHub {{/action}} on {{/repository/name}}: {{/pull_request/title}}"

[webhooks.open]

[webhooks.off]
enabled = false
"#;

async fn start(dir: &Path, config: &str, envs: &[(&str, &str)]) -> GatewayProcess {
    let path = dir.join("flynn.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.display().to_string();
    GatewayProcess::spawn(&dir.join("data"), &["--config", &path], envs).await
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn std_key(secret: &str) -> Vec<u8> {
    key_from_secret(Scheme::StandardWebhooks, secret).unwrap()
}

/// Standard Webhooks headers for `body` signed with `secret` at `timestamp`.
fn signed(id: &str, timestamp: i64, body: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            sign_standard(&std_key(secret), id, timestamp, body.as_bytes()),
        ),
    ]
}

/// POSTs `body` with `headers`; the status and the JSON body.
async fn post(
    gw: &GatewayProcess,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let http = flynn_gateway::outbound::client().unwrap();
    let mut request = http
        .post(format!("http://{}{path}", gw.addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

/// `agent.attach` to the session's turn. The 202 comes before the lane's worker registers the
/// run, so "no turn" (-2) is retried, for a bounded time.
async fn attach(ws: &mut Ws, session: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let attached = ws
            .call("agent.attach", json!({ "sessionId": session }))
            .await;
        if attached["error"]["code"] != json!(-2) || tokio::time::Instant::now() > deadline {
            return attached;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn reason(body: &Value) -> &str {
    body["error"]["data"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_signed_delivery_becomes_a_turn_that_websocket_clients_follow() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let body = r#"{"type":"invoice.paid","data":{"id":"in_4711"}}"#;
    let (status, accepted) = post(
        &gw,
        "/webhooks/std",
        &signed("msg_turn1", now(), body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["id"], "msg_turn1");
    assert_eq!(accepted["sessionId"], "webhook:std");
    assert_eq!(accepted["status"], "accepted");

    let mut ws = Ws::connect(&gw.url(), &[]).await.unwrap();
    let attached = attach(&mut ws, "webhook:std").await;
    let content = attached["result"]["content"].as_str().unwrap_or_default();
    assert!(
        !content.is_empty(),
        "the turn's answer is followed: {attached}"
    );
    let session = ws
        .call("sessions.get", json!({ "sessionId": "webhook:std" }))
        .await;
    let text = session.to_string();
    assert!(
        text.contains("in_4711") && text.contains("Webhook `std`"),
        "the default template's message is stored: {text}"
    );

    // `?wait=true`: the embedded model's answer in the response.
    let body = r#"{"type":"invoice.paid","data":{"id":"in_4712"}}"#;
    let (status, done) = post(
        &gw,
        "/webhooks/std?wait=true",
        &signed("msg_turn2", now(), body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["id"], "msg_turn2");
    assert_eq!(done["sessionId"], "webhook:std");
    assert!(
        !done["content"].as_str().unwrap_or_default().is_empty(),
        "{done}"
    );
    assert!(done["usage"]["inputTokens"].is_u64(), "{done}");
}

#[tokio::test]
async fn rotation_several_signatures_and_the_github_scheme_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let body = r#"{"n":1}"#;
    // Signed with the second configured secret only.
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("msg_rot1", now(), body, STD_NEW_SECRET),
        body,
    )
    .await;
    assert_eq!(
        status, 202,
        "the second secret of secret_env is accepted: {reply}"
    );
    // The sender's own rotation: an unknown signature first, the right one second.
    let ts = now();
    let good = sign_standard(&std_key(STD_SECRET), "msg_rot2", ts, body.as_bytes());
    let headers = vec![
        ("webhook-id", "msg_rot2".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            format!("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= {good}"),
        ),
    ];
    let (status, reply) = post(&gw, "/webhooks/std", &headers, body).await;
    assert_eq!(status, 202, "one matching signature among several: {reply}");

    let body = r#"{"action":"opened","repository":{"name":"flynn"},"pull_request":{"title":"Add webhooks"}}"#;
    let github = |delivery: &str| {
        vec![
            (
                "x-hub-signature-256",
                sign_github(GH_SECRET.as_bytes(), body.as_bytes()),
            ),
            ("x-github-delivery", delivery.to_owned()),
            ("x-github-event", "pull_request".to_owned()),
        ]
    };
    let (status, reply) = post(
        &gw,
        "/webhooks/gh?wait=true",
        &github("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["sessionId"], "webhook:gh:flynn",
        "the session comes from session_pointer"
    );
    let mut ws = Ws::connect(&gw.url(), &[]).await.unwrap();
    let session = ws
        .call("sessions.get", json!({ "sessionId": "webhook:gh:flynn" }))
        .await;
    assert!(
        session
            .to_string()
            .contains("GitHub opened on flynn: Add webhooks"),
        "the template is rendered: {session}"
    );
    // X-GitHub-Delivery is the replay key of this scheme.
    let (status, reply) = post(
        &gw,
        "/webhooks/gh",
        &github("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        body,
    )
    .await;
    assert_eq!((status, reason(&reply)), (401, "replayed"), "{reply}");
    let mut bad = github("other-delivery");
    bad[0].1 = sign_github(b"not-the-secret-at-all-0000", body.as_bytes());
    let (status, reply) = post(&gw, "/webhooks/gh", &bad, body).await;
    assert_eq!((status, reason(&reply)), (401, "bad_signature"), "{reply}");
    // A payload without the session pointer's value.
    let no_repo = r#"{"action":"ping"}"#;
    let headers = vec![
        (
            "x-hub-signature-256",
            sign_github(GH_SECRET.as_bytes(), no_repo.as_bytes()),
        ),
        ("x-github-delivery", "ping-1".to_owned()),
    ];
    let (status, reply) = post(&gw, "/webhooks/gh", &headers, no_repo).await;
    assert_eq!(
        (status, reason(&reply)),
        (400, "missing_session"),
        "{reply}"
    );
}

#[tokio::test]
async fn bad_deliveries_get_the_documented_statuses_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let body = r#"{"ok":true}"#;
    let ts = now();

    let (status, reply) = post(
        &gw,
        "/webhooks/nope",
        &signed("m1", ts, body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(
        (status, reason(&reply), reply["error"]["code"].as_i64()),
        (404, "unknown_hook", Some(-3))
    );
    let (status, reply) = post(&gw, "/webhooks/off", &[], body).await;
    assert_eq!(
        (status, reason(&reply)),
        (404, "unknown_hook"),
        "a disabled hook is unknown"
    );
    let got = raw_http::http_get(gw.addr, "/webhooks/std", &[]).await;
    assert_eq!(
        (got.status, got.header("allow")),
        (405, Some("POST")),
        "{}",
        got.body
    );

    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096));
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("m2", ts, &big, STD_SECRET),
        &big,
    )
    .await;
    assert_eq!((status, reason(&reply)), (413, "too_large"), "{reply}");
    assert_eq!(
        chunked_post(&gw, "/webhooks/std", 4096).await,
        413,
        "a chunked body is bounded too"
    );

    let (status, reply) = post(&gw, "/webhooks/std", &[], body).await;
    assert_eq!(
        (status, reason(&reply), reply["error"]["code"].as_i64()),
        (401, "missing_signature", Some(-4)),
        "{reply}"
    );
    let mut no_ts = signed("m3", ts, body, STD_SECRET);
    no_ts.remove(1);
    let (status, reply) = post(&gw, "/webhooks/std", &no_ts, body).await;
    assert_eq!(
        (status, reason(&reply)),
        (401, "missing_signature"),
        "{reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("webhook-timestamp"),
        "{reply}"
    );

    let wrong = signed(
        "m4",
        ts,
        body,
        "whsec_d3JvbmctZmx5bm4td2ViaG9va3MtdGVzdC1rZXk=",
    );
    let (status, reply) = post(&gw, "/webhooks/std", &wrong, body).await;
    assert_eq!(
        (status, reason(&reply), reply["error"]["code"].as_i64()),
        (401, "bad_signature", Some(-5)),
        "{reply}"
    );
    let tampered = signed("m5", ts, body, STD_SECRET);
    let (status, reply) = post(&gw, "/webhooks/std", &tampered, r#"{"ok":false}"#).await;
    assert_eq!(
        (status, reason(&reply)),
        (401, "bad_signature"),
        "a changed body: {reply}"
    );

    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("m6", now() - 1000, body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(
        (status, reason(&reply)),
        (401, "stale_timestamp"),
        "{reply}"
    );
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("m7", now() + 1000, body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(
        (status, reason(&reply)),
        (401, "future_timestamp"),
        "{reply}"
    );

    let not_json = "this is not json";
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("m8", ts, not_json, STD_SECRET),
        not_json,
    )
    .await;
    assert_eq!((status, reason(&reply)), (400, "bad_json"), "{reply}");

    let (status, _) = post(
        &gw,
        "/webhooks/std",
        &signed("m9", ts, body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!(status, 202);
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("m9", ts, body, STD_SECRET),
        body,
    )
    .await;
    assert_eq!((status, reason(&reply)), (401, "replayed"), "{reply}");

    let metrics = raw_http::http_get(gw.addr, "/metrics", &[]).await.body;
    for series in [
        r#"flynn_webhook_deliveries_total{hook="unknown",outcome="unknown_hook"} 2"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="method_not_allowed"} 1"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="too_large"} 2"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="missing_signature"} 2"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="bad_signature"} 2"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="stale_timestamp"} 1"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="future_timestamp"} 1"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="bad_json"} 1"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="accepted"} 1"#,
        r#"flynn_webhook_deliveries_total{hook="std",outcome="replayed"} 1"#,
    ] {
        assert!(
            metrics.contains(series),
            "metrics lack `{series}`:\n{metrics}"
        );
    }
}

/// A chunked POST (no Content-Length) of `size` bytes; the response status.
async fn chunked_post(gw: &GatewayProcess, path: &str, size: usize) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        gw.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..size / 512 {
        // The server may answer and close before the last chunk: later writes may fail.
        let chunk = format!("200\r\n{}\r\n", "x".repeat(512));
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(raw_http::RAW_TIMEOUT, stream.read_to_end(&mut bytes)).await;
    raw_http::parse_response_bytes(&bytes).status
}

#[tokio::test]
async fn a_replayed_id_is_refused_after_a_restart_on_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"{"restart":true}"#;
    let headers = signed("msg_restart", now(), body, STD_SECRET);
    let mut gw = start(dir.path(), HOOKS, ENVS).await;
    let (status, reply) = post(&gw, "/webhooks/std", &headers, body).await;
    assert_eq!(status, 202, "{reply}");
    gw.signal("TERM");
    let exit = gw.wait_exit(std::time::Duration::from_secs(60)).await;
    assert!(exit.success(), "{exit:?}");
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let (status, reply) = post(&gw, "/webhooks/std", &headers, body).await;
    assert_eq!(
        (status, reason(&reply)),
        (401, "replayed"),
        "the id is remembered across restarts: {reply}"
    );
}

#[tokio::test]
async fn an_unsigned_hook_needs_the_gateway_token_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    // auth_http = false does not open unsigned hooks (decision webhook-auth).
    let config = format!("{HOOKS}\n[server]\nauth_http = false\n");
    let mut envs = ENVS.to_vec();
    envs.push(("FLYNN_SERVER_TOKEN", TOKEN));
    let gw = start(dir.path(), &config, &envs).await;
    let body = r#"{"text":"remind me"}"#;
    let (status, reply) = post(&gw, "/webhooks/open", &[], body).await;
    assert_eq!(
        (status, reply["error"]["code"].as_i64()),
        (401, Some(-4)),
        "{reply}"
    );
    let wrong = [("authorization", "Bearer not-the-token-0000".to_owned())];
    let (status, reply) = post(&gw, "/webhooks/open", &wrong, body).await;
    assert_eq!(
        (status, reply["error"]["code"].as_i64()),
        (401, Some(-5)),
        "{reply}"
    );
    let bearer = ("authorization", format!("Bearer {TOKEN}"));
    let from_page = [
        bearer.clone(),
        ("origin", "https://evil.example".to_owned()),
    ];
    let (status, reply) = post(&gw, "/webhooks/open", &from_page, body).await;
    assert_eq!((status, reason(&reply)), (403, "browser_origin"), "{reply}");
    let (status, reply) = post(
        &gw,
        "/webhooks/open?wait=true",
        std::slice::from_ref(&bearer),
        body,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["sessionId"], "webhook:open");
    assert!(
        reply["id"].as_str().unwrap_or_default().starts_with("wh_"),
        "{reply}"
    );
    // A signed hook needs no token (its signature is its credential).
    let signed_body = r#"{"signed":true}"#;
    let (status, reply) = post(
        &gw,
        "/webhooks/std",
        &signed("msg_tok", now(), signed_body, STD_SECRET),
        signed_body,
    )
    .await;
    assert_eq!(status, 202, "{reply}");

    let mut ws = Ws::connect(&gw.url(), &[("Authorization", &format!("Bearer {TOKEN}"))])
        .await
        .unwrap();
    let config = ws.call("config.get", json!({})).await;
    assert!(config["result"]["webhooks"]["std"].is_object(), "{config}");
    let shown = config.to_string();
    let logs = gw.stderr_text();
    assert!(
        logs.contains("webhook delivery"),
        "deliveries are logged:\n{logs}"
    );
    for secret in SECRET_FORMS {
        assert!(
            !shown.contains(secret),
            "config.get shows a secret: {shown}"
        );
        assert!(!logs.contains(secret), "the logs show a secret:\n{logs}");
    }
}

#[tokio::test]
async fn an_unsigned_hook_without_a_gateway_token_is_open_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let body = r#"{"text":"hello"}"#;
    let (status, reply) = post(&gw, "/webhooks/open", &[], body).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (202, Some("accepted")),
        "{reply}"
    );
}

#[tokio::test]
async fn a_signed_hook_whose_secret_is_not_set_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flynn.toml");
    std::fs::write(
        &path,
        "[webhooks.x]\nsecret_env = \"FLYNN_TEST_HOOK_SECRET_NOT_SET\"\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(process::binary())
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env_remove("FLYNN_TEST_HOOK_SECRET_NOT_SET")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("webhooks.x.secret_env")
            && stderr.contains("FLYNN_TEST_HOOK_SECRET_NOT_SET"),
        "{stderr}"
    );
}

#[tokio::test]
async fn of_concurrent_deliveries_of_one_id_exactly_one_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), HOOKS, ENVS).await;
    let body = r#"{"race":true}"#;
    let headers = signed("msg_race", now(), body, STD_SECRET);
    let attempts = (0..8).map(|_| post(&gw, "/webhooks/std", &headers, body));
    let statuses: Vec<(u16, String)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, reply)| (status, reason(&reply).to_owned()))
        .collect();
    let accepted = statuses.iter().filter(|(s, _)| *s == 202).count();
    let replayed = statuses
        .iter()
        .filter(|(s, r)| *s == 401 && r == "replayed")
        .count();
    assert_eq!((accepted, replayed), (1, 7), "{statuses:?}");
}
