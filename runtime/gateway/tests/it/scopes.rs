//! Least privilege (decision scopes), against the real daemon: every method of the spec called
//! with every single-scope token is refused with ScopeRequired (-6) exactly when the spec's
//! `x-scope` says so; capabilities report the scopes; a chat token's turns cannot call tools;
//! HTTP routes take scopes; presence and logs name the token, never show it.

use crate::support;
use crate::support::raw_http;

use flynn_protocol::{Method, Scopes};
use serde_json::{Value, json};
use support::{TestGateway, Ws};

/// One named token per scope, plus one for a chat client (read + chat).
const TOKENS: &str = r#"
token = "full-access-token-0"

[[server.tokens]]
name = "reader"
token = "token-for-read-1"
scopes = ["read"]

[[server.tokens]]
name = "chatter"
token = "token-for-chat-2"
scopes = ["chat"]

[[server.tokens]]
name = "operator"
token = "token-for-operator-3"
scopes = ["operator"]

[[server.tokens]]
name = "admin"
token = "token-for-admin-4"
scopes = ["admin"]

[[server.tokens]]
name = "chat-client"
token = "token-for-chat-client-5"
scopes = ["read", "chat"]

[[server.tokens]]
name = "phone"
token = "token-for-phone-6"
scopes = ["read", "chat"]
sessions = ["phone:*"]
"#;

fn token_of(scope: &str) -> &'static str {
    match scope {
        "read" => "token-for-read-1",
        "chat" => "token-for-chat-2",
        "operator" => "token-for-operator-3",
        "admin" => "token-for-admin-4",
        other => panic!("no test token for scope {other}"),
    }
}

async fn connect(gw: &TestGateway, token: &str) -> Ws {
    let bearer = format!("Bearer {token}");
    Ws::connect(&gw.url(), &[("Authorization", &bearer)])
        .await
        .unwrap_or_else(|e| panic!("connect with {token}: {e}"))
}

#[tokio::test]
async fn every_method_is_enforced_with_the_scope_the_spec_declares() {
    let gw = TestGateway::start(TOKENS).await;
    let mut checked = 0;
    for scope in Scopes::EVERY {
        let scope_name = Scopes::name(scope);
        for method in Method::ALL {
            // A fresh connection per call: system.disconnect closes the one it is called on.
            let mut ws = connect(&gw, token_of(scope_name)).await;
            ws.send(&json!({ "id": 1, "method": method.name(), "params": {} }))
                .await;
            let (_, reply) = ws.reply_to(1).await;
            let code = reply["error"]["code"].as_i64();
            let needed = Scopes::name(method.scope());
            if needed == scope_name {
                assert_ne!(
                    code,
                    Some(-6),
                    "{} with a `{scope_name}` token must pass the scope check: {reply}",
                    method.name()
                );
            } else {
                assert_eq!(
                    code,
                    Some(-6),
                    "{} needs `{needed}`; a `{scope_name}` token must be refused: {reply}",
                    method.name()
                );
                assert_eq!(reply["error"]["data"]["scope"], json!(needed), "{reply}");
                assert_eq!(
                    reply["error"]["data"]["method"],
                    json!(method.name()),
                    "{reply}"
                );
                let message = reply["error"]["message"].as_str().unwrap_or("");
                assert!(
                    message.contains(needed),
                    "the message names the scope: {message}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, Method::ALL.len() * Scopes::EVERY.len());
}

#[tokio::test]
async fn capabilities_report_the_connection_scopes() {
    let gw = TestGateway::start(TOKENS).await;
    let mut reader = connect(&gw, "token-for-read-1").await;
    let caps = reader.call("system.capabilities", json!({})).await;
    assert_eq!(caps["result"]["scopes"], json!(["read"]), "{caps}");
    let mut full = connect(&gw, "full-access-token-0").await;
    let caps = full.call("system.capabilities", json!({})).await;
    assert_eq!(
        caps["result"]["scopes"],
        json!(["read", "chat", "operator", "admin"]),
        "server.token holds every scope: {caps}"
    );
}

#[tokio::test]
async fn a_chat_token_chats_in_its_session_but_its_turns_call_no_tools() {
    let gw = TestGateway::start(TOKENS).await;
    let mut chat = connect(&gw, "token-for-chat-client-5").await;
    let tools = chat
        .call("tools.list", json!({ "sessionId": "scopes:chat" }))
        .await;
    assert_eq!(tools["result"]["tools"], json!([]), "{tools}");
    let marker = gw.dir.path().join("ran");
    let command = format!("touch {}", marker.display());
    let message = format!("[[tool:shell.exec {}]]", json!({ "command": command }));
    let id = chat
        .request(
            "agent.send",
            json!({ "sessionId": "scopes:chat", "message": message }),
        )
        .await;
    let (events, reply) = chat.reply_to(id).await;
    assert!(reply["result"].is_object(), "the turn completes: {reply}");
    let tool_end = events
        .iter()
        .find(|e| e["event"] == "tool_end")
        .unwrap_or_else(|| panic!("a tool_end event: {events:?}"));
    let error = tool_end["data"]["result"]["error"]
        .as_str()
        .or_else(|| tool_end["data"]["error"].as_str())
        .unwrap_or("");
    assert!(
        error.contains("operator"),
        "the tool call is refused naming the scope: {tool_end}"
    );
    assert!(!marker.exists(), "the shell command did not run");
    // tools.execute itself is refused.
    let direct = chat
        .call(
            "tools.execute",
            json!({ "sessionId": "scopes:chat", "tool": "shell.exec", "args": { "command": "true" } }),
        )
        .await;
    assert_eq!(direct["error"]["code"], -6, "{direct}");

    // The owner's token runs the same directive.
    let mut owner = connect(&gw, "full-access-token-0").await;
    let id = owner
        .request(
            "agent.send",
            json!({ "sessionId": "scopes:owner", "message": message }),
        )
        .await;
    let (_, reply) = owner.reply_to(id).await;
    assert!(reply["result"].is_object(), "{reply}");
    assert!(marker.exists(), "with `operator` the tool runs");
}

#[tokio::test]
async fn presence_names_the_token_and_never_shows_it() {
    let gw = TestGateway::start(TOKENS).await;
    let mut chat = connect(&gw, "token-for-chat-client-5").await;
    let reply = chat
        .call(
            "agent.send",
            json!({ "sessionId": "app:alice", "message": "hello" }),
        )
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    let presence = chat.call("system.presence", json!({})).await;
    let text = presence.to_string();
    assert!(
        text.contains("chat-client"),
        "presence names the token: {text}"
    );
    assert!(!text.contains("token-for-chat-client-5"), "{text}");
    let mut operator = connect(&gw, "token-for-operator-3").await;
    let config = operator.call("config.get", json!({})).await;
    let text = config.to_string();
    for secret in [
        "token-for-read-1",
        "full-access-token-0",
        "token-for-operator-3",
    ] {
        assert!(!text.contains(secret), "config.get shows {secret}: {text}");
    }
    assert!(
        text.contains("chat-client"),
        "token names stay visible: {text}"
    );
}

#[tokio::test]
async fn http_routes_take_scopes() {
    let gw = TestGateway::start(TOKENS).await;
    for token in ["token-for-read-1", "full-access-token-0"] {
        let bearer = format!("Bearer {token}");
        let reply = raw_http::http_get(gw.addr, "/health", &[("Authorization", &bearer)]).await;
        assert_eq!(reply.status, 200, "{token}: {reply:?}");
    }
    let bearer = "Bearer token-for-chat-2";
    let reply = raw_http::http_get(gw.addr, "/api/health", &[("Authorization", bearer)]).await;
    assert_eq!(
        reply.status, 403,
        "a chat-only token cannot read status: {reply:?}"
    );
    let body: Value = reply.json();
    assert_eq!(body["error"]["code"], -6, "{body}");
    assert_eq!(body["error"]["data"]["scope"], "read", "{body}");
}

#[tokio::test]
async fn bad_token_entries_are_refused_with_a_clear_message() {
    for (toml, expect) in [
        (
            "[[server.tokens]]\nname = \"x\"\ntoken = \"long-enough-token\"\nscopes = [\"root\"]\n",
            "unknown scope `root`",
        ),
        (
            "[[server.tokens]]\nname = \"x\"\ntoken = \"long-enough-token\"\nscopes = []\n",
            "list its scopes",
        ),
        (
            "[[server.tokens]]\nname = \"x\"\ntoken = \"long-enough-token\"\nscopes = [\"chat\"]\nsessions = [\"phone:[\"]\n",
            "sessions: `phone:[`",
        ),
        (
            "[[server.tokens]]\nname = \"x\"\nscopes = [\"read\"]\n",
            "token_env",
        ),
        (
            "[[server.tokens]]\nname = \"x\"\ntoken = \"long-enough-token\"\nscopes = [\"read\"]\n\n[[server.tokens]]\nname = \"x\"\ntoken = \"another-long-token\"\nscopes = [\"read\"]\n",
            "used twice",
        ),
        (
            "[[server.tokens]]\nname = \"x\"\ntoken_env = \"FLYNN_TEST_TOKEN_THAT_IS_NOT_SET\"\nscopes = [\"read\"]\n",
            "FLYNN_TEST_TOKEN_THAT_IS_NOT_SET",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("flynn.toml");
        std::fs::write(&path, format!("[server]\nport = 0\n\n{toml}")).expect("write");
        let message = match flynn_gateway::Config::load(&path) {
            Err(e) => e.to_string(),
            Ok(config) => match flynn_gateway::start(config.with_env(), None).await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted: {toml}"),
            },
        };
        assert!(message.contains(expect), "{toml}: {message}");
    }
}

#[tokio::test]
async fn a_token_limited_to_some_sessions_uses_only_those() {
    let gw = TestGateway::start(TOKENS).await;
    // Sessions the phone may not see, made by the owner.
    let mut owner = connect(&gw, "full-access-token-0").await;
    let reply = owner
        .call(
            "agent.send",
            json!({ "sessionId": "desk:1", "message": "private" }),
        )
        .await;
    assert!(reply["result"].is_object(), "{reply}");

    let mut phone = connect(&gw, "token-for-phone-6").await;
    let reply = phone
        .call(
            "agent.send",
            json!({ "sessionId": "phone:1", "message": "hello" }),
        )
        .await;
    assert!(reply["result"].is_object(), "its own session: {reply}");
    for (method, params) in [
        (
            "agent.send",
            json!({ "sessionId": "desk:1", "message": "hi" }),
        ),
        (
            "agent.send",
            json!({ "session": "desk:1", "message": "hi" }),
        ),
        ("sessions.get", json!({ "sessionId": "desk:1" })),
        ("sessions.delete", json!({ "sessionId": "desk:1" })),
        ("canvas.list", json!({ "sessionId": "desk:1" })),
    ] {
        let reply = phone.call(method, params).await;
        assert_eq!(reply["error"]["code"], -6, "{method}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("desk:1"), "{message}");
    }
    // Its own connection session works without naming it.
    let reply = phone.call("agent.send", json!({ "message": "hi" })).await;
    assert!(reply["result"].is_object(), "{reply}");
    // The list shows only what it may use.
    let listed = phone
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    let ids: Vec<String> = listed["result"]["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.contains(&"phone:1".to_owned()), "{listed}");
    assert!(!ids.iter().any(|id| id == "desk:1"), "{listed}");
    assert_eq!(listed["result"]["total"], json!(ids.len()), "{listed}");
    // The owner still sees everything.
    let listed = owner
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    assert!(listed.to_string().contains("desk:1"), "{listed}");
}
