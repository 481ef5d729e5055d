//! `sessions.list`, `sessions.get`, `sessions.create` and `sessions.delete` over a real
//! WebSocket, as the spec describes them (method descriptions and decision
//! `sessions-list-persisted`).

use crate::support;

use serde_json::{Value, json};
use support::{TestGateway, Ws};

/// Sends a message to `session` and waits for its reply (the run persists both messages).
async fn exchange(ws: &mut Ws, session: &str, message: &str) -> String {
    let id = ws
        .request(
            "agent.send",
            json!({ "sessionId": session, "message": message }),
        )
        .await;
    let (_, reply) = ws.reply_to(id).await;
    reply["result"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("agent.send replied {reply}"))
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["result"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("sessions.list replied {list}"))
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn my_session(ws: &mut Ws) -> (String, String) {
    let info = ws.call("system.info", json!({})).await;
    (
        info["result"]["connectionId"]
            .as_str()
            .expect("connectionId")
            .to_owned(),
        info["result"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned(),
    )
}

#[tokio::test]
async fn create_then_resume_attaches_the_connection() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = ws
        .call("sessions.create", json!({ "sessionId": "telegram:42" }))
        .await;
    assert_eq!(
        reply["result"],
        json!({ "sessionId": "telegram:42", "created": true }),
        "{reply}"
    );
    let (_, attached) = my_session(&mut ws).await;
    assert_eq!(
        attached, "telegram:42",
        "sessions.create attaches the connection"
    );

    // Requests without a session id now go to the attached session.
    exchange_default(&mut ws, "to the attached session").await;
    let got = ws
        .call("sessions.get", json!({ "sessionId": "telegram:42" }))
        .await;
    assert_eq!(
        got["result"]["history"][0]["content"], "to the attached session",
        "{got}"
    );

    // The same id again, from another connection: resumed.
    let mut other = gw.client().await;
    let reply = other
        .call("sessions.create", json!({ "sessionId": "telegram:42" }))
        .await;
    assert_eq!(
        reply["result"],
        json!({ "sessionId": "telegram:42", "created": false }),
        "{reply}"
    );
    let (_, attached) = my_session(&mut other).await;
    assert_eq!(attached, "telegram:42");
}

async fn exchange_default(ws: &mut Ws, message: &str) {
    let id = ws
        .request("agent.send", json!({ "message": message }))
        .await;
    let (_, reply) = ws.reply_to(id).await;
    assert_eq!(reply["result"]["sessionId"], "telegram:42", "{reply}");
}

#[tokio::test]
async fn create_without_id_makes_a_fresh_ws_session() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let a = ws.call("sessions.create", json!({})).await;
    let b = ws.call("sessions.create", json!({})).await;
    let (a, b) = (&a["result"], &b["result"]);
    assert_eq!(a["created"], true, "{a}");
    assert!(
        a["sessionId"]
            .as_str()
            .is_some_and(|s| s.starts_with("ws:") && s.len() > 3),
        "{a}"
    );
    assert_ne!(
        a["sessionId"], b["sessionId"],
        "each call creates a new session"
    );
    let (_, attached) = my_session(&mut ws).await;
    assert_eq!(json!(attached), b["sessionId"]);
}

#[tokio::test]
async fn create_resumes_a_live_session_not_yet_stored() {
    // "An id that exists (live or persisted) is resumed (`created: false`)": another
    // connection's default session is live.
    let gw = TestGateway::start("").await;
    let mut a = gw.client().await;
    let (_, live) = my_session(&mut a).await;
    let mut b = gw.client().await;
    let reply = b
        .call("sessions.create", json!({ "sessionId": live }))
        .await;
    assert_eq!(
        reply["result"]["created"], false,
        "a live session is resumed: {reply}"
    );
}

#[tokio::test]
async fn create_rejects_ids_that_are_not_frontend_colon_user() {
    // "`frontend:userId` (both parts non-empty, no whitespace; otherwise InvalidRequest)".
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for bad in [
        "",
        "nocolon",
        "telegram:",
        ":123",
        "tele gram:1",
        "telegram:1 2",
        "a:\nb",
    ] {
        let reply = ws
            .call("sessions.create", json!({ "sessionId": bad }))
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
    let (_, attached) = my_session(&mut ws).await;
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
    let mut ws = gw.client().await;
    let first = exchange(&mut ws, "slack:u1", "first question").await;
    let second = exchange(&mut ws, "slack:u1", "second question").await;

    let got = ws
        .call("sessions.get", json!({ "sessionId": "slack:u1" }))
        .await;
    let r = &got["result"];
    assert_eq!(r["id"], "slack:u1", "{got}");
    assert_eq!(
        r["history"],
        json!([
            { "role": "user", "content": "first question" },
            { "role": "assistant", "content": first },
            { "role": "user", "content": "second question" },
            { "role": "assistant", "content": second },
        ]),
        "{got}"
    );
    let created = chrono::DateTime::parse_from_rfc3339(r["createdAt"].as_str().expect("createdAt"))
        .expect("createdAt is ISO-8601");
    let active =
        chrono::DateTime::parse_from_rfc3339(r["lastActiveAt"].as_str().expect("lastActiveAt"))
            .expect("lastActiveAt is ISO-8601");
    assert!(created <= active, "{got}");
    let age = chrono::Utc::now().signed_duration_since(created);
    assert!(
        age.num_seconds() < 60 && age.num_seconds() >= -1,
        "createdAt is now-ish: {got}"
    );

    // historyLimit keeps the newest messages, still oldest first.
    let got = ws
        .call(
            "sessions.get",
            json!({ "sessionId": "slack:u1", "historyLimit": 2 }),
        )
        .await;
    assert_eq!(
        got["result"]["history"],
        json!([
            { "role": "user", "content": "second question" },
            { "role": "assistant", "content": second },
        ]),
        "{got}"
    );
}

#[tokio::test]
async fn get_of_a_live_default_session_has_empty_history() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let (_, live) = my_session(&mut ws).await;
    let got = ws.call("sessions.get", json!({ "sessionId": live })).await;
    assert_eq!(got["result"]["id"], json!(live), "{got}");
    assert_eq!(got["result"]["history"], json!([]), "{got}");
}

#[tokio::test]
async fn get_and_delete_of_unknown_sessions_are_code_1() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for method in ["sessions.get", "sessions.delete"] {
        let reply = ws
            .call(method, json!({ "sessionId": "telegram:nobody" }))
            .await;
        assert_eq!(reply["error"]["code"], 1, "{method}: {reply}");
        assert_eq!(
            reply["error"]["data"]["sessionId"], "telegram:nobody",
            "{reply}"
        );
        assert!(reply.get("result").is_none());
    }
}

#[tokio::test]
async fn delete_removes_the_session_and_its_history() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    exchange(&mut ws, "discord:gone", "remember this").await;
    exchange(&mut ws, "discord:kept", "and this").await;

    let reply = ws
        .call("sessions.delete", json!({ "sessionId": "discord:gone" }))
        .await;
    assert_eq!(reply["result"], json!({ "success": true }), "{reply}");
    let reply = ws
        .call("sessions.get", json!({ "sessionId": "discord:gone" }))
        .await;
    assert_eq!(reply["error"]["code"], 1, "deleted: {reply}");
    let list = ws
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    assert!(!ids(&list).contains(&"discord:gone".to_owned()), "{list}");
    assert!(ids(&list).contains(&"discord:kept".to_owned()), "{list}");
    // Deleting twice: it is gone.
    let reply = ws
        .call("sessions.delete", json!({ "sessionId": "discord:gone" }))
        .await;
    assert_eq!(reply["error"]["code"], 1, "{reply}");
    // A new session with the same id starts empty.
    let reply = ws
        .call("sessions.create", json!({ "sessionId": "discord:gone" }))
        .await;
    assert_eq!(reply["result"]["created"], true, "{reply}");
    let got = ws
        .call("sessions.get", json!({ "sessionId": "discord:gone" }))
        .await;
    assert_eq!(got["result"]["history"], json!([]), "{got}");
}

#[tokio::test]
async fn delete_of_the_attached_session_falls_back_to_the_default() {
    // "connections attached to it fall back to their default `ws:<connectionId>` session".
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let (connection_id, _) = my_session(&mut ws).await;
    ws.call("sessions.create", json!({ "sessionId": "telegram:temp" }))
        .await;
    let reply = ws
        .call("sessions.delete", json!({ "sessionId": "telegram:temp" }))
        .await;
    assert_eq!(reply["result"]["success"], true, "{reply}");
    let (_, attached) = my_session(&mut ws).await;
    assert_eq!(attached, format!("ws:{connection_id}"));
}

#[tokio::test]
async fn list_live_persisted_frontend_and_total() {
    // No debounce: a lane is idle as soon as its reply is sent (see the test below for the
    // default debounce).
    let gw = TestGateway::start("\n[queue]\ndebounce_ms = 0").await;
    // Stored but no longer live: created, then the connection moved on.
    let mut a = gw.client().await;
    exchange(&mut a, "telegram:old", "old message").await;
    a.call("sessions.create", json!({ "sessionId": "telegram:live" }))
        .await;
    let mut b = gw.client().await;
    b.call("sessions.create", json!({ "sessionId": "discord:live" }))
        .await;
    let mut c = gw.client().await;
    let (_, c_default) = my_session(&mut c).await;

    // Default: only live sessions (attached to open connections).
    let list = a.call("sessions.list", json!({})).await;
    let mut live = ids(&list);
    live.sort();
    let mut expected = vec![
        "discord:live".to_owned(),
        "telegram:live".to_owned(),
        c_default.clone(),
    ];
    expected.sort();
    assert_eq!(live, expected, "{list}");
    assert_eq!(list["result"]["total"], 3, "{list}");

    // includePersisted adds stored sessions that are not live (the unstored default session
    // is the subject of `list_with_include_persisted_still_lists_live_sessions`).
    let list = a
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    let all = ids(&list);
    for id in ["telegram:old", "telegram:live", "discord:live"] {
        assert!(
            all.contains(&id.to_owned()),
            "{id} listed with includePersisted: {list}"
        );
    }
    assert_eq!(list["result"]["total"], json!(all.len()), "{list}");

    // frontend filter, with and without persisted sessions.
    let list = a
        .call("sessions.list", json!({ "frontend": "telegram" }))
        .await;
    assert_eq!(ids(&list), vec!["telegram:live".to_owned()], "{list}");
    assert_eq!(list["result"]["total"], 1);
    let list = a
        .call(
            "sessions.list",
            json!({ "frontend": "telegram", "includePersisted": true }),
        )
        .await;
    let mut telegram = ids(&list);
    telegram.sort();
    assert_eq!(
        telegram,
        vec!["telegram:live".to_owned(), "telegram:old".to_owned()],
        "{list}"
    );
    assert_eq!(list["result"]["total"], 2);

    // Summaries carry the split id, counts and the effective config.
    let old = list["result"]["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "telegram:old"))
        .cloned()
        .expect("telegram:old");
    assert_eq!(old["frontend"], "telegram", "{old}");
    assert_eq!(old["userId"], "old", "{old}");
    assert_eq!(old["messageCount"], 2, "{old}");
    assert!(
        old["lastMessageAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "epoch ms: {old}"
    );
    assert_eq!(old["config"]["queue"]["mode"], "followup", "{old}");
}

#[tokio::test]
async fn list_pages_with_limit_offset_and_newest_first() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let names: Vec<String> = (1..=5).map(|i| format!("page:{i}")).collect();
    for name in &names {
        exchange(&mut ws, name, "hello").await;
    }
    let filter = json!({ "frontend": "page", "includePersisted": true });
    let list = ws.call("sessions.list", filter.clone()).await;
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(
        ids(&list),
        newest_first,
        "ordered by last message time, newest first: {list}"
    );

    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let mut params = filter.clone();
        params["limit"] = json!(2);
        params["offset"] = json!(offset);
        let page = ws.call("sessions.list", params).await;
        assert_eq!(
            page["result"]["total"], 5,
            "total counts before paging: {page}"
        );
        let expected_len = if offset == 4 { 1 } else { 2 };
        assert_eq!(ids(&page).len(), expected_len, "{page}");
        paged.extend(ids(&page));
    }
    assert_eq!(paged, newest_first, "the pages together are the whole list");

    let mut params = filter.clone();
    params["offset"] = json!(10);
    let page = ws.call("sessions.list", params).await;
    assert_eq!(ids(&page), Vec::<String>::new(), "{page}");
    assert_eq!(page["result"]["total"], 5, "{page}");
}

#[tokio::test]
async fn list_with_include_persisted_still_lists_live_sessions() {
    // "`includePersisted: true` adds sessions that exist only in the store": the live ones
    // stay, including a connection's default session that has nothing stored yet.
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let (_, live) = my_session(&mut ws).await;
    let list = ws
        .call("sessions.list", json!({ "includePersisted": true }))
        .await;
    assert!(ids(&list).contains(&live), "{live} in {list}");
}

#[tokio::test]
async fn a_finished_run_does_not_keep_its_session_live() {
    // Default debounce (250 ms). Once agent.send has replied and nothing is queued, the
    // session is neither attached nor running: it is not live.
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    exchange(&mut ws, "telegram:done", "hello").await;
    let list = ws.call("sessions.list", json!({})).await;
    assert!(
        !ids(&list).contains(&"telegram:done".to_owned()),
        "a session whose run has finished is not live: {list}"
    );
}
