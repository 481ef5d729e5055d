//! `sessions.list`, `sessions.get`, `sessions.create` and `sessions.delete` over a real
//! WebSocket, as the spec describes them (method descriptions and decision
//! `sessions-list-persisted`). The calls go through the generated typed client (every reply
//! also decodes into the spec's types); ids the spec refuses are sent raw on the same
//! connection.

use std::num::NonZeroU64;

use crate::support;
use crate::support::sid;

use flynn_protocol::types::{self, HistoryMessage, HistoryRole, QueueMode};
use serde_json::json;
use support::{TestClient, TestGateway, rpc_error};

/// Sends a message to `session` and waits for its reply (the run persists both messages).
async fn exchange(client: &TestClient, session: &str, message: &str) -> String {
    send(client, Some(session), message).await.content
}

async fn send(client: &TestClient, session: Option<&str>, message: &str) -> types::AgentSendResult {
    client
        .agent_send(types::AgentSendParams {
            session_id: session.map(sid),
            message: message.to_owned(),
            attachments: Vec::new(),
            idempotency_key: None,
            session: None,
        })
        .await
        .unwrap_or_else(|e| panic!("agent.send {message:?}: {e}"))
}

async fn create(
    client: &TestClient,
    session: Option<&str>,
) -> Result<types::SessionsCreateResult, flynn_protocol::wire::ClientError> {
    client
        .sessions_create(types::SessionsCreateParams {
            session_id: session.map(sid),
        })
        .await
}

fn get_params(session: &str) -> types::SessionsGetParams {
    types::SessionsGetParams {
        session_id: sid(session),
        // The spec's default.
        history_limit: NonZeroU64::new(200).expect("200 is not zero"),
    }
}

async fn get(
    client: &TestClient,
    session: &str,
) -> Result<types::SessionsGetResult, flynn_protocol::wire::ClientError> {
    client.sessions_get(get_params(session)).await
}

async fn delete(
    client: &TestClient,
    session: &str,
) -> Result<types::SessionsDeleteResult, flynn_protocol::wire::ClientError> {
    client
        .sessions_delete(types::SessionsDeleteParams {
            session_id: sid(session),
        })
        .await
}

async fn list(client: &TestClient, params: types::SessionsListParams) -> types::SessionsListResult {
    client
        .sessions_list(params.clone())
        .await
        .unwrap_or_else(|e| panic!("sessions.list {params:?}: {e}"))
}

fn persisted() -> types::SessionsListParams {
    types::SessionsListParams {
        include_persisted: true,
        ..Default::default()
    }
}

fn ids(list: &types::SessionsListResult) -> Vec<String> {
    list.sessions.iter().map(|s| s.id.clone()).collect()
}

fn message(role: HistoryRole, content: &str) -> HistoryMessage {
    HistoryMessage {
        role,
        content: content.to_owned(),
    }
}

async fn my_session(client: &TestClient) -> (String, String) {
    let info = client
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info");
    (
        info.connection_id.expect("connectionId").into(),
        info.session_id.expect("sessionId").into(),
    )
}

#[tokio::test]
async fn create_then_resume_attaches_the_connection() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let reply = create(&client, Some("telegram:42"))
        .await
        .expect("sessions.create");
    assert_eq!(
        reply,
        types::SessionsCreateResult {
            session_id: "telegram:42".into(),
            created: true
        }
    );
    let (_, attached) = my_session(&client).await;
    assert_eq!(
        attached, "telegram:42",
        "sessions.create attaches the connection"
    );

    // Requests without a session id now go to the attached session.
    let reply = send(&client, None, "to the attached session").await;
    assert_eq!(
        reply.session_id.as_deref(),
        Some("telegram:42"),
        "{reply:?}"
    );
    let got = get(&client, "telegram:42").await.expect("sessions.get");
    assert_eq!(got.history[0].content, "to the attached session", "{got:?}");

    // The same id again, from another connection: resumed.
    let other = gw.typed_client().await;
    let reply = create(&other, Some("telegram:42"))
        .await
        .expect("sessions.create again");
    assert_eq!(
        reply,
        types::SessionsCreateResult {
            session_id: "telegram:42".into(),
            created: false
        }
    );
    let (_, attached) = my_session(&other).await;
    assert_eq!(attached, "telegram:42");
}

#[tokio::test]
async fn create_without_id_makes_a_fresh_ws_session() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let a = create(&client, None).await.expect("sessions.create");
    let b = create(&client, None).await.expect("sessions.create");
    assert!(a.created, "{a:?}");
    assert!(
        a.session_id.starts_with("ws:") && a.session_id.len() > 3,
        "{a:?}"
    );
    assert_ne!(
        a.session_id, b.session_id,
        "each call creates a new session"
    );
    let (_, attached) = my_session(&client).await;
    assert_eq!(attached, b.session_id);
}

#[tokio::test]
async fn create_resumes_a_live_session_not_yet_stored() {
    // "An id that exists (live or persisted) is resumed (`created: false`)": another
    // connection's default session is live.
    let gw = TestGateway::start("").await;
    let a = gw.typed_client().await;
    let (_, live) = my_session(&a).await;
    let b = gw.typed_client().await;
    let reply = create(&b, Some(&live)).await.expect("sessions.create");
    assert!(!reply.created, "a live session is resumed: {reply:?}");
}

#[tokio::test]
async fn create_rejects_ids_that_are_not_frontend_colon_user() {
    // "`frontend:userId` (both parts non-empty, no whitespace; otherwise InvalidRequest)".
    // Malformed on purpose: raw calls on the typed client's connection.
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    for bad in [
        "",
        "nocolon",
        "telegram:",
        ":123",
        "tele gram:1",
        "telegram:1 2",
        "a:\nb",
    ] {
        let reply = client
            .raw("sessions.create", json!({ "sessionId": bad }))
            .await;
        assert_eq!(
            reply["error"]["code"], -2,
            "sessions.create {bad:?}: {reply}"
        );
        assert_eq!(
            reply["error"]["data"]["path"], "params.sessionId",
            "{reply}"
        );
    }
    let (_, attached) = my_session(&client).await;
    assert!(
        attached.starts_with("ws:"),
        "a refused create does not attach: {attached}"
    );
}

#[tokio::test]
async fn every_session_id_param_meets_the_specs_session_id_schema() {
    // Decision session-id-rule: 1 to 256 characters (code points, not bytes), no control
    // characters; otherwise InvalidRequest naming the field, whichever method carries it.
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let too_long = format!("telegram:{}", "x".repeat(248));
    for (method, params, path) in [
        (
            "sessions.get",
            json!({ "sessionId": too_long }),
            "params.sessionId",
        ),
        (
            "sessions.delete",
            json!({ "sessionId": "" }),
            "params.sessionId",
        ),
        (
            "canvas.list",
            json!({ "sessionId": "a:\u{7}" }),
            "params.sessionId",
        ),
        (
            "agent.cancel",
            json!({ "sessionId": "a:\u{85}b" }),
            "params.sessionId",
        ),
        ("tools.list", json!({ "sessionId": "" }), "params.sessionId"),
        (
            "agent.send",
            json!({ "message": "hi", "session": too_long }),
            "params.session",
        ),
    ] {
        let reply = ws.call(method, params.clone()).await;
        assert_eq!(reply["error"]["code"], -2, "{method} {params}: {reply}");
        assert_eq!(reply["error"]["data"]["path"], path, "{reply}");
    }
    // 256 characters of two bytes each (over 256 bytes) are a valid id.
    let wide = format!("telegram:{}", "é".repeat(247));
    assert_eq!(wide.chars().count(), 256);
    let reply = ws
        .call("sessions.create", json!({ "sessionId": wide }))
        .await;
    assert_eq!(reply["result"]["sessionId"], wide, "{reply}");
    assert_eq!(reply["result"]["created"], true, "{reply}");
}

#[tokio::test]
async fn get_returns_history_oldest_first_with_limit() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let first = exchange(&client, "slack:u1", "first question").await;
    let second = exchange(&client, "slack:u1", "second question").await;

    // `createdAt` and `lastActiveAt` decode as ISO-8601 times (the typed fields).
    let got = get(&client, "slack:u1").await.expect("sessions.get");
    assert_eq!(got.id, "slack:u1", "{got:?}");
    assert_eq!(
        got.history,
        [
            message(HistoryRole::User, "first question"),
            message(HistoryRole::Assistant, &first),
            message(HistoryRole::User, "second question"),
            message(HistoryRole::Assistant, &second),
        ],
        "{got:?}"
    );
    assert!(got.created_at <= got.last_active_at, "{got:?}");
    let age = chrono::Utc::now().signed_duration_since(got.created_at);
    assert!(
        age.num_seconds() < 60 && age.num_seconds() >= -1,
        "createdAt is now-ish: {got:?}"
    );

    // historyLimit keeps the newest messages, still oldest first.
    let got = client
        .sessions_get(types::SessionsGetParams {
            history_limit: NonZeroU64::new(2).expect("2 is not zero"),
            ..get_params("slack:u1")
        })
        .await
        .expect("sessions.get with historyLimit");
    assert_eq!(
        got.history,
        [
            message(HistoryRole::User, "second question"),
            message(HistoryRole::Assistant, &second),
        ],
        "{got:?}"
    );
}

#[tokio::test]
async fn get_of_a_live_default_session_has_empty_history() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let (_, live) = my_session(&client).await;
    let got = get(&client, &live).await.expect("sessions.get");
    assert_eq!(got.id, live, "{got:?}");
    assert_eq!(got.history, [], "{got:?}");
}

#[tokio::test]
async fn get_and_delete_of_unknown_sessions_are_code_1() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    // An error reply, not a result (`rpc_error` fails the test otherwise).
    let errors = [
        (
            "sessions.get",
            rpc_error(get(&client, "telegram:nobody").await),
        ),
        (
            "sessions.delete",
            rpc_error(delete(&client, "telegram:nobody").await),
        ),
    ];
    for (method, error) in errors {
        assert_eq!(error.code, 1, "{method}: {error:?}");
        assert_eq!(
            error.data.as_ref().map(|d| &d["sessionId"]),
            Some(&json!("telegram:nobody")),
            "{method}: {error:?}"
        );
    }
}

#[tokio::test]
async fn delete_removes_the_session_and_its_history() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    exchange(&client, "discord:gone", "remember this").await;
    exchange(&client, "discord:kept", "and this").await;

    let reply = delete(&client, "discord:gone")
        .await
        .expect("sessions.delete");
    assert_eq!(reply, types::SessionsDeleteResult { success: true });
    let error = rpc_error(get(&client, "discord:gone").await);
    assert_eq!(error.code, 1, "deleted: {error:?}");
    let listed = list(&client, persisted()).await;
    assert!(
        !ids(&listed).contains(&"discord:gone".to_owned()),
        "{listed:?}"
    );
    assert!(
        ids(&listed).contains(&"discord:kept".to_owned()),
        "{listed:?}"
    );
    // Deleting twice: it is gone.
    let error = rpc_error(delete(&client, "discord:gone").await);
    assert_eq!(error.code, 1, "{error:?}");
    // A new session with the same id starts empty.
    let reply = create(&client, Some("discord:gone"))
        .await
        .expect("sessions.create");
    assert!(reply.created, "{reply:?}");
    let got = get(&client, "discord:gone").await.expect("sessions.get");
    assert_eq!(got.history, [], "{got:?}");
}

#[tokio::test]
async fn delete_of_the_attached_session_falls_back_to_the_default() {
    // "connections attached to it fall back to their default `ws:<connectionId>` session".
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let (connection_id, _) = my_session(&client).await;
    create(&client, Some("telegram:temp"))
        .await
        .expect("sessions.create");
    let reply = delete(&client, "telegram:temp")
        .await
        .expect("sessions.delete");
    assert!(reply.success, "{reply:?}");
    let (_, attached) = my_session(&client).await;
    assert_eq!(attached, format!("ws:{connection_id}"));
}

#[tokio::test]
async fn list_live_persisted_frontend_and_total() {
    // No debounce: a lane is idle as soon as its reply is sent (see the test below for the
    // default debounce).
    let gw = TestGateway::start("\n[queue]\ndebounce_ms = 0").await;
    // Stored but no longer live: created, then the connection moved on.
    let a = gw.typed_client().await;
    exchange(&a, "telegram:old", "old message").await;
    create(&a, Some("telegram:live")).await.expect("create");
    let b = gw.typed_client().await;
    create(&b, Some("discord:live")).await.expect("create");
    let c = gw.typed_client().await;
    let (_, c_default) = my_session(&c).await;

    // Default: only live sessions (attached to open connections).
    let listed = list(&a, Default::default()).await;
    let mut live = ids(&listed);
    live.sort();
    let mut expected = vec![
        "discord:live".to_owned(),
        "telegram:live".to_owned(),
        c_default.clone(),
    ];
    expected.sort();
    assert_eq!(live, expected, "{listed:?}");
    assert_eq!(listed.total, 3, "{listed:?}");

    // includePersisted adds stored sessions that are not live (the unstored default session
    // is the subject of `list_with_include_persisted_still_lists_live_sessions`).
    let listed = list(&a, persisted()).await;
    let all = ids(&listed);
    for id in ["telegram:old", "telegram:live", "discord:live"] {
        assert!(
            all.contains(&id.to_owned()),
            "{id} listed with includePersisted: {listed:?}"
        );
    }
    assert_eq!(listed.total, all.len() as u64, "{listed:?}");

    // frontend filter, with and without persisted sessions.
    let telegram_only = types::SessionsListParams {
        frontend: Some("telegram".into()),
        ..Default::default()
    };
    let listed = list(&a, telegram_only.clone()).await;
    assert_eq!(ids(&listed), vec!["telegram:live".to_owned()], "{listed:?}");
    assert_eq!(listed.total, 1);
    let listed = list(
        &a,
        types::SessionsListParams {
            include_persisted: true,
            ..telegram_only
        },
    )
    .await;
    let mut telegram = ids(&listed);
    telegram.sort();
    assert_eq!(
        telegram,
        vec!["telegram:live".to_owned(), "telegram:old".to_owned()],
        "{listed:?}"
    );
    assert_eq!(listed.total, 2);

    // Summaries carry the split id, counts and the effective config.
    let old = listed
        .sessions
        .iter()
        .find(|s| s.id == "telegram:old")
        .expect("telegram:old");
    assert_eq!(old.frontend, "telegram", "{old:?}");
    assert_eq!(old.user_id, "old", "{old:?}");
    assert_eq!(old.message_count, 2, "{old:?}");
    assert!(
        old.last_message_at.is_some_and(|t| t > 1_600_000_000_000),
        "epoch ms: {old:?}"
    );
    assert_eq!(old.config.queue.mode, QueueMode::Followup, "{old:?}");
}

#[tokio::test]
async fn list_pages_with_limit_offset_and_newest_first() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let names: Vec<String> = (1..=5).map(|i| format!("page:{i}")).collect();
    for name in &names {
        exchange(&client, name, "hello").await;
    }
    let filter = types::SessionsListParams {
        frontend: Some("page".into()),
        include_persisted: true,
        ..Default::default()
    };
    let listed = list(&client, filter.clone()).await;
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(
        ids(&listed),
        newest_first,
        "ordered by last message time, newest first: {listed:?}"
    );

    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let params = types::SessionsListParams {
            limit: NonZeroU64::new(2).expect("2 is not zero"),
            offset,
            ..filter.clone()
        };
        let page = list(&client, params).await;
        assert_eq!(page.total, 5, "total counts before paging: {page:?}");
        let expected_len = if offset == 4 { 1 } else { 2 };
        assert_eq!(ids(&page).len(), expected_len, "{page:?}");
        paged.extend(ids(&page));
    }
    assert_eq!(paged, newest_first, "the pages together are the whole list");

    let page = list(
        &client,
        types::SessionsListParams {
            offset: 10,
            ..filter.clone()
        },
    )
    .await;
    assert_eq!(ids(&page), Vec::<String>::new(), "{page:?}");
    assert_eq!(page.total, 5, "{page:?}");
}

#[tokio::test]
async fn list_with_include_persisted_still_lists_live_sessions() {
    // "`includePersisted: true` adds sessions that exist only in the store": the live ones
    // stay, including a connection's default session that has nothing stored yet.
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let (_, live) = my_session(&client).await;
    let listed = list(&client, persisted()).await;
    assert!(ids(&listed).contains(&live), "{live} in {listed:?}");
}

#[tokio::test]
async fn a_finished_run_does_not_keep_its_session_live() {
    // Default debounce (250 ms). Once agent.send has replied and nothing is queued, the
    // session is neither attached nor running: it is not live.
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    exchange(&client, "telegram:done", "hello").await;
    let listed = list(&client, Default::default()).await;
    assert!(
        !ids(&listed).contains(&"telegram:done".to_owned()),
        "a session whose run has finished is not live: {listed:?}"
    );
}
