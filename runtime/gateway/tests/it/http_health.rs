//! The HTTP side of the port: `GET /health` and `GET /api/health` with status, version and
//! uptime; behind the token (401 JSON) when `server.token` is set and `server.auth_http` is on,
//! open when it is off; the failure limit applies to HTTP too.

use crate::support;

use crate::support::raw_http;

use raw_http::http_get;
use support::TestGateway;

const TOKEN: &str = "health-check-token-123";

#[tokio::test]
async fn health_without_a_token_configured() {
    let gw = TestGateway::start("").await;
    for path in ["/health", "/api/health"] {
        let reply = http_get(gw.addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "{reply:?}"
        );
        let body = reply.json();
        assert_eq!(body["status"], "ok", "{body}");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{body}");
        assert!(body["uptime"].is_u64(), "{body}");
    }
}

#[tokio::test]
async fn health_needs_the_token_when_auth_http() {
    let gw = TestGateway::start(&format!("token = \"{TOKEN}\"")).await;
    for path in ["/health", "/api/health"] {
        let reply = http_get(gw.addr, path, &[]).await;
        assert_eq!(reply.status, 401, "{path} without a token: {reply:?}");
        let body = reply.json();
        assert_eq!(body["error"]["code"], -4, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");

        let reply = http_get(gw.addr, path, &[("Authorization", "Bearer wrong-token-0")]).await;
        assert_eq!(reply.status, 401, "{path} with a wrong token: {reply:?}");
        assert_eq!(reply.json()["error"]["code"], -5);
        assert!(!reply.body.contains(TOKEN));

        let reply = http_get(
            gw.addr,
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .await;
        assert_eq!(reply.status, 200, "{path} with the token: {reply:?}");
        assert_eq!(reply.json()["status"], "ok");
    }
}

#[tokio::test]
async fn health_is_open_when_auth_http_is_off() {
    let gw = TestGateway::start(&format!("token = \"{TOKEN}\"\nauth_http = false")).await;
    let reply = http_get(gw.addr, "/health", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["status"], "ok");
    // The WebSocket still needs the token.
    let mut ws = gw.client().await;
    let frame = ws.next_frame().await.expect("error frame");
    assert_eq!(frame["error"]["code"], -4, "{frame}");
    assert_eq!(ws.close_code().await, Some(1008));
}

#[tokio::test]
async fn http_failures_count_toward_the_limit() {
    let gw = TestGateway::start(&format!(
        "token = \"{TOKEN}\"\nauth_failures_per_minute = 3"
    ))
    .await;
    for _ in 0..3 {
        let reply = http_get(
            gw.addr,
            "/health",
            &[("Authorization", "Bearer wrong-token-0")],
        )
        .await;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    let reply = http_get(
        gw.addr,
        "/health",
        &[("Authorization", "Bearer wrong-token-0")],
    )
    .await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(reply.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let gw = TestGateway::start("").await;
    let reply = http_get(gw.addr, "/no/such/route", &[]).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert!(reply.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn dashboard_files_are_served_from_the_configured_folder() {
    let site = tempfile::tempdir().expect("temp dir");
    std::fs::write(site.path().join("index.html"), "<h1>flynn dashboard</h1>").expect("write");
    std::fs::write(site.path().join("app.js"), "console.log('dashboard')").expect("write");
    let gw = TestGateway::start(&format!(
        "token = \"{TOKEN}\"\ndashboard_dir = {:?}",
        site.path().display().to_string()
    ))
    .await;
    for (path, needle) in [
        ("/", "flynn dashboard"),
        ("/index.html", "flynn dashboard"),
        ("/app.js", "console.log"),
    ] {
        let reply = http_get(gw.addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert!(reply.body.contains(needle), "{path}: {reply:?}");
    }
    // Nothing outside the folder, and health keeps its own auth.
    let reply = http_get(gw.addr, "/../flynn.toml", &[]).await;
    assert_ne!(reply.status, 200, "{reply:?}");
    assert!(!reply.body.contains(TOKEN));
    assert_eq!(http_get(gw.addr, "/health", &[]).await.status, 401);
}
