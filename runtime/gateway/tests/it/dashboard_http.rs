//! The dashboard at `/` (issue 15): the build embedded in the binary is served by default,
//! without the token (the files hold no data), with a strict Content-Security-Policy, nosniff,
//! no-referrer, `immutable` for hashed assets and `no-cache` for index.html;
//! `server.dashboard_dir` replaces it (same headers); `server.dashboard = false` turns it off
//! (then `/` is the JSON 404 of any unknown route).

use crate::support;

use crate::support::raw_http;

use raw_http::{HttpReply, http_get};
use support::TestGateway;

const TOKEN: &str = "dashboard-token-123";

fn assert_security_headers(reply: &HttpReply) {
    let csp = reply.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
}

#[tokio::test]
async fn the_embedded_dashboard_is_served_without_the_token() {
    let gw = TestGateway::start(&format!("token = \"{TOKEN}\"")).await;
    let index = http_get(gw.addr, "/", &[]).await;
    assert_eq!(index.status, 200, "{index:?}");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert_security_headers(&index);
    assert!(!index.body.contains(TOKEN));
    assert_eq!(http_get(gw.addr, "/index.html", &[]).await.body, index.body);

    // The assets index.html links are served immutable.
    let links: Vec<&str> = index
        .body
        .split('"')
        .filter(|s| s.starts_with("./assets/"))
        .collect();
    assert_eq!(links.len(), 2, "a script and a stylesheet: {}", index.body);
    for link in links {
        let reply = http_get(gw.addr, &link[1..], &[]).await;
        assert_eq!(reply.status, 200, "{link}: {reply:?}");
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_security_headers(&reply);
        let want = if link.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(
            reply.header("content-type").unwrap().starts_with(want),
            "{reply:?}"
        );
    }

    // Unknown paths stay the JSON 404; health keeps its token.
    let missing = http_get(gw.addr, "/assets/app-000000000000.js", &[]).await;
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(missing.json()["error"]["message"].is_string());
    assert_eq!(http_get(gw.addr, "/health", &[]).await.status, 401);
}

#[tokio::test]
async fn dashboard_false_turns_it_off() {
    let gw = TestGateway::start("dashboard = false").await;
    for path in ["/", "/index.html"] {
        let reply = http_get(gw.addr, path, &[]).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.json()["error"]["code"], -3, "{reply:?}");
    }
    assert_eq!(http_get(gw.addr, "/health", &[]).await.status, 200);
}

#[tokio::test]
async fn dashboard_dir_replaces_the_embedded_build_with_the_same_headers() {
    let site = tempfile::tempdir().expect("temp dir");
    std::fs::write(site.path().join("index.html"), "<h1>my own dashboard</h1>").expect("write");
    let gw = TestGateway::start(&format!(
        "dashboard_dir = {:?}",
        site.path().display().to_string()
    ))
    .await;
    let reply = http_get(gw.addr, "/", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("my own dashboard"), "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_security_headers(&reply);
}
