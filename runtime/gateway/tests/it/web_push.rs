//! Web Push for the web chat against a real gateway and a local push service: registering
//! browser subscriptions over HTTP, a finished turn pushed (VAPID-signed, `aes128gcm`-encrypted,
//! decrypted here as the browser would), 410 deleting the subscription, 429 retried after
//! `Retry-After`, no push while a WebSocket client is attached to the session, the cap, bad
//! inputs, auth and scopes, the VAPID key across restarts, and the private key kept out of
//! `config.get` and the logs.

use crate::support::process;
mod push_service;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use flynn_gateway::inbox::{Discard, InboundMessage, start_turn};
use push_service::{Browser, Expect, PushService, verify};
use serde_json::{Value, json};
use support::TestGateway;

const SUBJECT: &str = "mailto:ops@example.com";

fn push_toml(extra: &str) -> String {
    format!(
        "[queue]\ndebounce_ms = 0\n\n[push]\nallow_insecure_loopback = true\nsubject = \"{SUBJECT}\"\nttl_secs = 600\n{extra}\n"
    )
}

/// One HTTP request to the gateway: (status, JSON body).
async fn call(
    gw: &TestGateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let client = flynn_gateway::outbound::client().unwrap();
    let mut request = client.request(method.parse().unwrap(), gw.http(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

async fn public_key(gw: &TestGateway) -> String {
    let (status, body) = call(gw, "GET", "/webchat/push/public-key", None, None).await;
    assert_eq!(status, 200, "{body}");
    body["publicKey"].as_str().expect("publicKey").to_owned()
}

async fn count(gw: &TestGateway) -> u64 {
    let (status, body) = call(gw, "GET", "/webchat/push/subscriptions", None, None).await;
    assert_eq!(status, 200, "{body}");
    body["count"].as_u64().unwrap()
}

async fn subscribe(gw: &TestGateway, body: &Value) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/webchat/push/subscriptions",
        None,
        Some(body.to_string()),
    )
    .await
}

/// Runs a turn on `session_id` without a WebSocket request; returns (runId, answer).
async fn turn(gw: &TestGateway, session_id: &str, text: &str) -> (String, String) {
    let gateway = gw.running.as_ref().unwrap().gateway.clone();
    let started = start_turn(
        &gateway,
        InboundMessage {
            session_id: session_id.to_owned(),
            text: text.to_owned(),
            sender_name: None,
            may_use_tools: false,
        },
        Arc::new(Discard),
    )
    .await
    .unwrap();
    let reply = started.reply.await.unwrap().unwrap();
    (reply.run_id.unwrap(), reply.content)
}

/// Polls the subscription count until it is `want` (bounded: a minute or more, a liveness
/// bound).
async fn wait_count(gw: &TestGateway, want: u64) {
    for _ in 0..600 {
        if count(gw).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the subscription count never became {want}");
}

#[tokio::test]
async fn a_finished_turn_is_pushed_signed_and_encrypted_for_the_browser() {
    let service = PushService::start().await;
    let gw = TestGateway::start(&push_toml("")).await;
    let (status, meta) = call(&gw, "GET", "/webchat/push/public-key", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(meta["enabled"], true);
    assert_eq!(meta["configured"], true);
    assert_eq!(meta["keySource"], "generated");
    assert_eq!(meta["subject"], SUBJECT);
    let gateway_key = meta["publicKey"].as_str().unwrap().to_owned();
    let point = B64.decode(&gateway_key).unwrap();
    assert_eq!(
        (point.len(), point[0]),
        (65, 4),
        "an uncompressed P-256 point"
    );

    let browser = Browser::new();
    let endpoint = format!("{}/push/alice-1", service.origin);
    let (status, body) = subscribe(&gw, &browser.subscription(&endpoint, "webchat:alice")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({ "enabled": true, "count": 1, "cap": 100, "created": true, "sessionId": "webchat:alice" })
    );
    // The same endpoint again is an update, not a second subscription.
    let (status, body) = subscribe(&gw, &browser.subscription(&endpoint, "webchat:alice")).await;
    assert_eq!(
        (status, body["created"].clone(), body["count"].clone()),
        (200, json!(false), json!(1))
    );

    let (run_id, answer) = turn(&gw, "webchat:alice", "Hello, Flynn! Tell me about push.").await;
    let received = service.wait_for(1).await;
    assert_eq!(received[0].path, "/push/alice-1");
    let expect = Expect {
        gateway_public_key: &gateway_key,
        subject: SUBJECT,
        ttl: "600",
    };
    let plaintext = verify(&received[0], &service, &browser, &expect);
    assert_eq!(plaintext["sessionId"], "webchat:alice");
    assert_eq!(plaintext["runId"], run_id.as_str());
    let body = plaintext["body"].as_str().unwrap();
    let start: String = answer.chars().take(40).collect();
    assert!(
        body.starts_with(&start),
        "the notification shows the answer: {body:?} vs {answer:?}"
    );

    // A turn of another session pushes nothing to this subscription.
    turn(&gw, "webchat:someone-else", "hi").await;
    let metrics = reqwest_text(&gw, "/metrics").await;
    assert!(
        metrics.contains("flynn_push_sends_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );
    assert_eq!(service.received().len(), 1);
}

async fn reqwest_text(gw: &TestGateway, path: &str) -> String {
    let client = flynn_gateway::outbound::client().unwrap();
    client
        .get(gw.http(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rate_limited_push_is_retried_and_a_gone_subscription_is_deleted() {
    let service = PushService::start().await;
    let gw = TestGateway::start(&push_toml("")).await;
    let gateway_key = public_key(&gw).await;
    let browser = Browser::new();
    let endpoint = format!("{}/push/bob", service.origin);
    assert_eq!(
        subscribe(&gw, &browser.subscription(&endpoint, "webchat:bob"))
            .await
            .0,
        201
    );

    // 429 with Retry-After: the same message is sent again after it, and then delivered.
    service.script(vec![(429, vec![("retry-after", "1".to_owned())])]);
    let (run_id, _) = turn(&gw, "webchat:bob", "first question").await;
    let received = service.wait_for(2).await;
    let expect = Expect {
        gateway_public_key: &gateway_key,
        subject: SUBJECT,
        ttl: "600",
    };
    for r in &received {
        assert_eq!(
            verify(r, &service, &browser, &expect)["runId"],
            run_id.as_str()
        );
    }
    assert_eq!(count(&gw).await, 1);

    // A redirect is not followed (the endpoint could send the gateway anywhere): the send
    // counts as rejected and the target sees nothing.
    let elsewhere = PushService::start().await;
    service.script(vec![(
        307,
        vec![("location", format!("{}/inside", elsewhere.origin))],
    )]);
    turn(&gw, "webchat:bob", "second question").await;
    service.wait_for(3).await;
    wait_metric(&gw, "flynn_push_sends_total{outcome=\"rejected\"} 1").await;
    assert!(elsewhere.received().is_empty(), "the redirect was followed");

    // 410 Gone: the subscription is deleted.
    service.script(vec![(410, Vec::new())]);
    turn(&gw, "webchat:bob", "third question").await;
    service.wait_for(4).await;
    wait_count(&gw, 0).await;
    wait_metric(&gw, "flynn_push_sends_total{outcome=\"gone\"} 1").await;
}

/// Polls /metrics until it holds `line` (bounded: a minute or more, a liveness bound).
async fn wait_metric(gw: &TestGateway, line: &str) {
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = reqwest_text(gw, "/metrics").await;
        if metrics.contains(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/metrics never showed {line}:\n{metrics}");
}

#[tokio::test]
async fn no_push_while_a_websocket_client_is_attached_to_the_session() {
    let service = PushService::start().await;
    let gw = TestGateway::start(&push_toml("")).await;
    let browser = Browser::new();
    let endpoint = format!("{}/push/carol", service.origin);
    assert_eq!(
        subscribe(&gw, &browser.subscription(&endpoint, "webchat:carol"))
            .await
            .0,
        201
    );

    let mut ws = gw.client().await;
    let created = ws
        .call("sessions.create", json!({ "sessionId": "webchat:carol" }))
        .await;
    assert!(created.get("result").is_some(), "{created}");
    let attached = ws
        .call(
            "agent.send",
            json!({ "sessionId": "webchat:carol", "message": "while I watch" }),
        )
        .await;
    assert!(attached["result"]["runId"].is_string(), "{attached}");
    drop(ws);
    let gateway = gw.running.as_ref().unwrap().gateway.clone();
    // A minute or more (a liveness bound) for the gateway to see the close.
    for _ in 0..1200 {
        if gateway.connections.count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gateway.connections.count(), 0);

    // Once nobody watches, the next turn is pushed, and it is the only push of the session.
    let (run_id, _) = turn(&gw, "webchat:carol", "while I am away").await;
    let received = service.wait_for(1).await;
    let plaintext = serde_json::from_slice::<Value>(&browser.decrypt(&received[0].body)).unwrap();
    assert_eq!(plaintext["runId"], run_id.as_str());
    assert_eq!(
        service.received().len(),
        1,
        "the watched turn was not pushed"
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_with_the_field_and_the_cap_is_kept() {
    // Default endpoint policy (no loopback), a cap of 2.
    let gw = TestGateway::start("[push]\nmax_subscriptions = 2\n").await;
    let browser = Browser::new();
    let good = browser.subscription("https://push.example.com/send/1", "webchat:dave");
    let with = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases = [
        (
            with(&["endpoint"], json!("http://push.example.com/x")),
            "endpoint",
        ),
        (
            with(&["endpoint"], json!("https://127.0.0.1:9/x")),
            "endpoint",
        ),
        (
            with(&["endpoint"], json!("https://192.168.1.20/x")),
            "endpoint",
        ),
        (
            with(&["endpoint"], json!("https://169.254.169.254/latest")),
            "endpoint",
        ),
        (with(&["endpoint"], json!("not a url")), "endpoint"),
        (
            with(
                &["endpoint"],
                json!(format!("https://push.example.com/{}", "a".repeat(2100))),
            ),
            "endpoint",
        ),
        (with(&["endpoint"], Value::Null), "endpoint"),
        (
            with(&["keys", "p256dh"], json!(B64.encode([4u8; 65]))),
            "keys.p256dh",
        ),
        (
            with(&["keys", "p256dh"], json!(B64.encode([4u8; 33]))),
            "keys.p256dh",
        ),
        (with(&["keys", "p256dh"], json!("***")), "keys.p256dh"),
        (
            with(&["keys", "auth"], json!(B64.encode([1u8; 15]))),
            "keys.auth",
        ),
        (with(&["keys"], Value::Null), "keys"),
        (with(&["sessionId"], Value::Null), "sessionId"),
        (with(&["sessionId"], json!("")), "sessionId"),
        (with(&["expirationTime"], json!(-5)), "expirationTime"),
    ];
    for (body, path) in cases {
        let (status, reply) = subscribe(&gw, &body).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["error"]["code"], -2, "{reply}");
        assert_eq!(reply["error"]["data"]["path"], path, "{reply}");
    }
    let (status, reply) = call(
        &gw,
        "POST",
        "/webchat/push/subscriptions",
        None,
        Some("{not json".into()),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (400, json!(-1)),
        "{reply}"
    );
    let huge = json!({ "endpoint": "https://push.example.com/x", "pad": "x".repeat(9000) });
    let (status, reply) = subscribe(&gw, &huge).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(count(&gw).await, 0, "nothing bad was stored");

    // The cap: two endpoints fit, a third is refused with 409, updating a stored one is not.
    assert_eq!(subscribe(&gw, &good).await.0, 201);
    let second = browser.subscription("https://push.example.com/send/2", "webchat:dave");
    assert_eq!(subscribe(&gw, &second).await.0, 201);
    let third = browser.subscription("https://push.example.com/send/3", "webchat:dave");
    let (status, reply) = subscribe(&gw, &third).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(
        reply["error"]["data"],
        json!({ "path": "endpoint", "count": 2, "cap": 2 })
    );
    assert_eq!(subscribe(&gw, &good).await.0, 200);
    let (status, body) = call(&gw, "GET", "/webchat/push/subscriptions", None, None).await;
    assert_eq!(
        (status, body),
        (200, json!({ "enabled": true, "count": 2, "cap": 2 }))
    );

    // DELETE: by endpoint; an unknown one is not an error, a missing one is.
    let delete = |endpoint: Value| json!({ "endpoint": endpoint }).to_string();
    let (status, body) = call(
        &gw,
        "DELETE",
        "/webchat/push/subscriptions",
        None,
        Some(delete(json!("https://push.example.com/send/1"))),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({ "enabled": true, "count": 1, "cap": 2, "removed": true })
        )
    );
    let (status, body) = call(
        &gw,
        "DELETE",
        "/webchat/push/subscriptions",
        None,
        Some(delete(json!("https://push.example.com/send/1"))),
    )
    .await;
    assert_eq!((status, body["removed"].clone()), (200, json!(false)));
    let (status, body) = call(
        &gw,
        "DELETE",
        "/webchat/push/subscriptions",
        None,
        Some("{}".into()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["data"]["path"].clone()),
        (400, json!("endpoint"))
    );
    assert_eq!(
        subscribe(&gw, &third).await.0,
        201,
        "room again after the delete"
    );
}

const TOKENS: &str = r#"
[[server.tokens]]
name = "reader"
token = "token-for-read-1"
scopes = ["read"]

[[server.tokens]]
name = "phone"
token = "token-for-phone-6"
scopes = ["read", "chat"]
sessions = ["phone:*"]
"#;

#[tokio::test]
async fn the_routes_need_the_gateway_token_and_the_right_scope() {
    let gw = TestGateway::start(&format!("token = \"the-owner-token-0\"\n{TOKENS}")).await;
    let browser = Browser::new();
    let body = browser
        .subscription("https://push.example.com/send/p", "phone:1")
        .to_string();
    let routes = [
        ("GET", "/webchat/push/public-key", None),
        ("GET", "/webchat/push/subscriptions", None),
        ("POST", "/webchat/push/subscriptions", Some(body.clone())),
        (
            "DELETE",
            "/webchat/push/subscriptions",
            Some(json!({ "endpoint": "https://push.example.com/send/p" }).to_string()),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, reply) = call(&gw, method, path, None, body.clone()).await;
        assert_eq!(
            (status, reply["error"]["code"].clone()),
            (401, json!(-4)),
            "{method} {path}"
        );
        let (status, _) = call(&gw, method, path, Some("wrong-token-xyz"), body.clone()).await;
        assert_eq!(status, 401, "{method} {path}");
    }
    // read: may look, not register.
    let reader = Some("token-for-read-1");
    assert_eq!(
        call(&gw, "GET", "/webchat/push/public-key", reader, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&gw, "GET", "/webchat/push/subscriptions", reader, None)
            .await
            .0,
        200
    );
    let (status, reply) = call(
        &gw,
        "POST",
        "/webchat/push/subscriptions",
        reader,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (403, json!(-6)),
        "{reply}"
    );
    // A token limited to phone:* sessions registers for them only.
    let phone = Some("token-for-phone-6");
    assert_eq!(
        call(
            &gw,
            "POST",
            "/webchat/push/subscriptions",
            phone,
            Some(body.clone())
        )
        .await
        .0,
        201
    );
    let other = browser
        .subscription("https://push.example.com/send/q", "webchat:owner")
        .to_string();
    assert_eq!(
        call(
            &gw,
            "POST",
            "/webchat/push/subscriptions",
            phone,
            Some(other.clone())
        )
        .await
        .0,
        403
    );
    let owner = Some("the-owner-token-0");
    assert_eq!(
        call(
            &gw,
            "POST",
            "/webchat/push/subscriptions",
            owner,
            Some(other)
        )
        .await
        .0,
        201
    );
    let not_its_own = json!({ "endpoint": "https://push.example.com/send/q" }).to_string();
    assert_eq!(
        call(
            &gw,
            "DELETE",
            "/webchat/push/subscriptions",
            phone,
            Some(not_its_own)
        )
        .await
        .0,
        403
    );
    // Nor can it take the owner's subscription over by registering its endpoint again.
    let takeover = browser
        .subscription("https://push.example.com/send/q", "phone:2")
        .to_string();
    assert_eq!(
        call(
            &gw,
            "POST",
            "/webchat/push/subscriptions",
            phone,
            Some(takeover)
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn the_generated_vapid_key_survives_a_restart_and_push_can_be_off() {
    let gw = TestGateway::start("").await;
    let first = public_key(&gw).await;
    let key_file = gw.data_dir().join("push").join("vapid-private-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, "").await;
    assert_eq!(public_key(&gw).await, first, "the same key after a restart");
    let dir = gw.stop().await;

    let gw = TestGateway::start_in(dir, "[push]\nenabled = false\n").await;
    let (status, body) = call(&gw, "GET", "/webchat/push/public-key", None, None).await;
    assert_eq!(
        (status, body["enabled"].clone(), body["publicKey"].clone()),
        (200, json!(false), Value::Null)
    );
    let browser = Browser::new();
    let (status, reply) = subscribe(
        &gw,
        &browser.subscription("https://push.example.com/x", "webchat:e"),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["data"]["path"].clone()),
        (409, json!("push.enabled"))
    );
}

/// The test decryptor is RFC 8291's: it opens the RFC's worked example (section 5).
#[test]
fn the_test_decryptor_opens_the_rfc_8291_example() {
    let d = |s: &str| B64.decode(s).unwrap();
    let ua =
        p256::SecretKey::from_slice(&d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
    let auth: [u8; 16] = d("BTBZMqHH6r4Tts7J_aSIgg").try_into().unwrap();
    let body = d(concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    ));
    assert_eq!(
        push_service::decrypt(&body, &ua, &auth),
        b"When I grow up, I want to be a watermelon"
    );
}

/// The daemon as a process, its VAPID key from the environment, debug logging: after a push,
/// neither its stderr nor `config.get` holds the private key.
#[tokio::test]
async fn the_private_key_stays_out_of_config_get_and_the_logs() {
    use process::GatewayProcess;
    let service = PushService::start().await;
    let dir = tempfile::tempdir().unwrap();
    let private = B64.encode([7u8; 32]);
    let config = dir.path().join("flynn.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[logging]\nlevel = \"debug\"\n",
            push_toml("vapid_private_key_env = \"FLYNN_TEST_VAPID_KEY\"")
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let process = GatewayProcess::spawn(
        &data,
        &["--config", config.to_str().unwrap()],
        &[("FLYNN_TEST_VAPID_KEY", private.as_str())],
    )
    .await;
    let base = format!("http://{}", process.addr);
    let client = flynn_gateway::outbound::client().unwrap();
    let meta: Value = serde_json::from_slice(
        &client
            .get(format!("{base}/webchat/push/public-key"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["keySource"], "environment", "{meta}");
    let expected = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    assert_eq!(
        meta["publicKey"],
        B64.encode(expected.public_key().to_encoded_point(false).as_bytes())
    );

    let browser = Browser::new();
    let endpoint = format!("{}/push/env", service.origin);
    let response = client
        .post(format!("{base}/webchat/push/subscriptions"))
        .body(browser.subscription(&endpoint, "webchat:env").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let mut ws = support::Ws::connect(&process.url(), &[]).await.unwrap();
    // Not attached to webchat:env (its own session is ws:<id>), so the turn is pushed.
    let reply = ws
        .call(
            "agent.send",
            json!({ "sessionId": "webchat:env", "message": "hello" }),
        )
        .await;
    assert!(reply["result"]["runId"].is_string(), "{reply}");
    let received = service.wait_for(1).await;
    let expect = Expect {
        gateway_public_key: meta["publicKey"].as_str().unwrap(),
        subject: SUBJECT,
        ttl: "600",
    };
    assert_eq!(
        verify(&received[0], &service, &browser, &expect)["sessionId"],
        "webchat:env"
    );

    let config = ws.call("config.get", json!({})).await.to_string();
    assert!(config.contains("vapid_private_key_env"), "{config}");
    let logs = process.stderr_text();
    for (what, text) in [("config.get", &config), ("stderr", &logs)] {
        assert!(
            !text.contains(&private),
            "{what} holds the VAPID private key"
        );
        assert!(
            !text.contains(&B64.encode(browser.auth)),
            "{what} holds the browser's auth secret"
        );
    }
}
