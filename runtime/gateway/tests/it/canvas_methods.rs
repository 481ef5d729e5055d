//! `canvas.*` over a real WebSocket against the in-process daemon and its SQLite store:
//! upsert semantics, get/list/delete/clear, size limits, unknown artifacts and sessions, and
//! persistence across a restart.
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json `canvas.*` (and the x-decisions
//! "gates-and-not-found" and "agent-send-new-session": an unknown artifact is -2 on
//! `params.artifactId`, an unknown session is SessionNotFound).

use crate::method_checks;
use crate::support;

use method_checks::{assert_code, assert_invalid, call_ok, now_ms, restart, stop, wait_past};
use serde_json::{Value, json};
use support::{TestGateway, Ws};

const SESSION: &str = "ws:canvas-tests";

/// Creates (persists) `session` so canvas calls address an existing session.
async fn session(ws: &mut Ws, session: &str) {
    call_ok(ws, "sessions.create", json!({"sessionId": session})).await;
}

async fn put(ws: &mut Ws, session: &str, artifact: &str, content: Value) -> Value {
    call_ok(
        ws,
        "canvas.put",
        json!({"sessionId": session, "artifactId": artifact, "type": "note", "content": content}),
    )
    .await
}

fn ids(list: &Value) -> Vec<String> {
    list["artifacts"]
        .as_array()
        .unwrap_or_else(|| panic!("canvas.list has `artifacts`: {list}"))
        .iter()
        .map(|a| a["artifactId"].as_str().expect("artifactId").to_owned())
        .collect()
}

#[tokio::test]
async fn put_is_an_upsert_that_keeps_created_at_and_advances_updated_at() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;

    let t0 = now_ms();
    let first = call_ok(
        &mut ws,
        "canvas.put",
        json!({"sessionId": SESSION, "artifactId": "summary-card", "type": "note",
               "title": "Draft Summary", "content": {"markdown": "## Notes"},
               "metadata": {"lane": "analysis"}}),
    )
    .await;
    let t1 = now_ms();
    assert_eq!(first["created"], json!(true), "{first}");
    let artifact = &first["artifact"];
    let created_at = artifact["createdAt"].as_u64().expect("createdAt ms");
    assert!(
        (t0..=t1).contains(&created_at),
        "createdAt {created_at} in {t0}..{t1}"
    );
    assert_eq!(
        artifact,
        &json!({"sessionId": SESSION, "artifactId": "summary-card", "type": "note",
                "title": "Draft Summary", "content": {"markdown": "## Notes"},
                "metadata": {"lane": "analysis"}, "createdAt": created_at,
                "updatedAt": created_at})
    );

    wait_past(created_at).await;
    let second = call_ok(
        &mut ws,
        "canvas.put",
        json!({"sessionId": SESSION, "artifactId": "summary-card", "type": "markdown",
               "content": {"markdown": "## Final"}}),
    )
    .await;
    assert_eq!(second["created"], json!(false), "{second}");
    let replaced = &second["artifact"];
    assert_eq!(
        replaced["createdAt"],
        json!(created_at),
        "createdAt is kept"
    );
    let updated_at = replaced["updatedAt"].as_u64().unwrap();
    assert!(updated_at > created_at, "updatedAt advances: {second}");
    assert_eq!(replaced["type"], json!("markdown"));
    assert_eq!(replaced["content"], json!({"markdown": "## Final"}));
    assert!(
        replaced.get("title").is_none() && replaced.get("metadata").is_none(),
        "a put replaces title and metadata too: {replaced}"
    );

    let got = call_ok(
        &mut ws,
        "canvas.get",
        json!({"sessionId": SESSION, "artifactId": "summary-card"}),
    )
    .await;
    assert_eq!(&got["artifact"], replaced);
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(
        list["artifacts"],
        json!([replaced]),
        "one artifact, not two"
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn list_is_newest_first_and_delete_and_clear_remove_artifacts() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    session(&mut ws, "ws:other-canvas").await;
    put(&mut ws, "ws:other-canvas", "elsewhere", json!({"n": 0})).await;

    let mut last = 0;
    for (i, id) in ["alpha", "beta", "gamma"].iter().enumerate() {
        wait_past(last).await;
        let r = put(&mut ws, SESSION, id, json!({"n": i})).await;
        last = r["artifact"]["updatedAt"].as_u64().unwrap();
    }
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(
        ids(&list),
        ["gamma", "beta", "alpha"],
        "newest first: {list}"
    );
    // Touching the oldest makes it the newest.
    wait_past(last).await;
    put(&mut ws, SESSION, "alpha", json!({"n": 10})).await;
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(
        ids(&list),
        ["alpha", "gamma", "beta"],
        "by updatedAt: {list}"
    );
    let limited = call_ok(
        &mut ws,
        "canvas.list",
        json!({"sessionId": SESSION, "limit": 2}),
    )
    .await;
    assert_eq!(ids(&limited), ["alpha", "gamma"]);
    let reply = ws
        .call("canvas.list", json!({"sessionId": SESSION, "limit": 0}))
        .await;
    assert_invalid(&reply, "params.limit", "limit 0");

    let deleted = call_ok(
        &mut ws,
        "canvas.delete",
        json!({"sessionId": SESSION, "artifactId": "gamma"}),
    )
    .await;
    assert_eq!(deleted, json!({"deleted": true}));
    let again = call_ok(
        &mut ws,
        "canvas.delete",
        json!({"sessionId": SESSION, "artifactId": "gamma"}),
    )
    .await;
    assert_eq!(again, json!({"deleted": false}), "delete is idempotent");
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(ids(&list), ["alpha", "beta"]);

    let cleared = call_ok(&mut ws, "canvas.clear", json!({"sessionId": SESSION})).await;
    assert_eq!(cleared, json!({"deleted": 2}));
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(list, json!({"artifacts": []}));
    let cleared = call_ok(&mut ws, "canvas.clear", json!({"sessionId": SESSION})).await;
    assert_eq!(cleared, json!({"deleted": 0}));
    // Other sessions are untouched.
    let other = call_ok(
        &mut ws,
        "canvas.list",
        json!({"sessionId": "ws:other-canvas"}),
    )
    .await;
    assert_eq!(ids(&other), ["elsewhere"]);
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn unknown_artifact_is_invalid_request_on_artifact_id() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    put(&mut ws, SESSION, "exists", json!({})).await;
    let reply = ws
        .call(
            "canvas.get",
            json!({"sessionId": SESSION, "artifactId": "missing"}),
        )
        .await;
    assert_invalid(
        &reply,
        "params.artifactId",
        "canvas.get of an unknown artifact",
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "the message names the artifact: {reply}"
    );
    // The same artifact id in another session is another artifact.
    session(&mut ws, "ws:canvas-elsewhere").await;
    let reply = ws
        .call(
            "canvas.get",
            json!({"sessionId": "ws:canvas-elsewhere", "artifactId": "exists"}),
        )
        .await;
    assert_invalid(
        &reply,
        "params.artifactId",
        "an artifact of another session",
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn malformed_put_params_name_the_offending_member() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    let cases = [
        (
            json!({"sessionId": SESSION, "artifactId": "a", "type": "note"}),
            "params.content",
        ),
        (
            json!({"sessionId": SESSION, "artifactId": "a", "type": "note", "content": [1, 2]}),
            "params.content",
        ),
        (
            json!({"sessionId": SESSION, "artifactId": "a", "type": "", "content": {}}),
            "params.type",
        ),
        (
            json!({"sessionId": SESSION, "artifactId": "", "type": "note", "content": {}}),
            "params.artifactId",
        ),
        (
            json!({"sessionId": SESSION, "artifactId": "a", "type": "note", "content": {},
                   "colour": "red"}),
            "params.colour",
        ),
    ];
    for (params, path) in cases {
        let reply = ws.call("canvas.put", params.clone()).await;
        assert_invalid(&reply, path, &format!("canvas.put {params}"));
    }
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(list, json!({"artifacts": []}), "nothing was stored");
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn artifact_size_limit_is_enforced_with_a_clear_error() {
    let gw = TestGateway::start("[canvas]\nmax_artifact_bytes = 100\n").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    // `{"text":"…"}` is 11 bytes of JSON around the text; the type `note` counts 4.
    let at_limit = json!({"text": "x".repeat(85)});
    assert_eq!(at_limit.to_string().len() + "note".len(), 100);
    let r = put(&mut ws, SESSION, "fits", at_limit).await;
    assert_eq!(r["created"], json!(true));

    let over = json!({"text": "x".repeat(86)});
    let reply = ws
        .call(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "too-big", "type": "note", "content": over}),
        )
        .await;
    assert_invalid(
        &reply,
        "params.content",
        "an artifact over max_artifact_bytes",
    );
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("101")
            && message.contains("100")
            && message.contains("max_artifact_bytes"),
        "the error gives the size, the limit and the setting: {message}"
    );
    // Replacing an existing artifact with an oversize one is refused too and keeps the old one.
    let reply = ws
        .call(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "fits", "type": "note",
                   "content": {"text": "y".repeat(500)}}),
        )
        .await;
    assert_invalid(&reply, "params.content", "an oversize replacement");
    // The renderer hint is stored too, so it counts: a small content cannot carry a huge type.
    let reply = ws
        .call(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "big-type", "type": "t".repeat(5000),
                   "content": {}}),
        )
        .await;
    assert_invalid(&reply, "params.content", "a type over max_artifact_bytes");
    let got = call_ok(
        &mut ws,
        "canvas.get",
        json!({"sessionId": SESSION, "artifactId": "fits"}),
    )
    .await;
    assert_eq!(got["artifact"]["content"]["text"], json!("x".repeat(85)));
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(ids(&list), ["fits"]);
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn artifact_count_per_session_is_limited() {
    let gw = TestGateway::start("[canvas]\nmax_artifacts_per_session = 3\n").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    session(&mut ws, "ws:canvas-second").await;
    for id in ["a1", "a2", "a3"] {
        put(&mut ws, SESSION, id, json!({"id": id})).await;
    }
    let reply = ws
        .call(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "a4", "type": "note", "content": {}}),
        )
        .await;
    assert_code(
        &reply,
        -2,
        "a fourth artifact with max_artifacts_per_session = 3",
    );
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_artifacts_per_session") && message.contains('3'),
        "the error names the limit: {reply}"
    );
    assert!(
        reply["error"]["data"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("params")),
        "{reply}"
    );
    // Replacing one of the three still works; another session has its own budget.
    let r = put(&mut ws, SESSION, "a2", json!({"id": "a2", "v": 2})).await;
    assert_eq!(r["created"], json!(false));
    put(&mut ws, "ws:canvas-second", "b1", json!({})).await;
    // Deleting one makes room.
    call_ok(
        &mut ws,
        "canvas.delete",
        json!({"sessionId": SESSION, "artifactId": "a1"}),
    )
    .await;
    let r = put(&mut ws, SESSION, "a4", json!({})).await;
    assert_eq!(r["created"], json!(true));
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    let mut listed = ids(&list);
    listed.sort();
    assert_eq!(listed, ["a2", "a3", "a4"]);
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn artifacts_survive_a_restart() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    let stored = call_ok(
        &mut ws,
        "canvas.put",
        json!({"sessionId": SESSION, "artifactId": "table-1", "type": "table", "title": "Costs",
               "content": {"rows": [["a", 1], ["b", 2]], "nested": {"ok": true}},
               "metadata": {"source": "test", "n": 3.5}}),
    )
    .await["artifact"]
        .clone();
    drop(ws);

    let gw = restart(gw, "").await;
    let mut ws = gw.client().await;
    let got = call_ok(
        &mut ws,
        "canvas.get",
        json!({"sessionId": SESSION, "artifactId": "table-1"}),
    )
    .await;
    assert_eq!(got["artifact"], stored, "the same artifact after a restart");
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": SESSION})).await;
    assert_eq!(list["artifacts"], json!([stored]));
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn artifacts_are_deleted_with_their_session() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    session(&mut ws, "ws:doomed").await;
    put(&mut ws, "ws:doomed", "card", json!({"x": 1})).await;
    call_ok(
        &mut ws,
        "sessions.delete",
        json!({"sessionId": "ws:doomed"}),
    )
    .await;
    session(&mut ws, "ws:doomed").await;
    let list = call_ok(&mut ws, "canvas.list", json!({"sessionId": "ws:doomed"})).await;
    assert_eq!(
        list,
        json!({"artifacts": []}),
        "spec canvas.put: artifacts are deleted with their session"
    );
    stop(gw, [ws]).await;
}

#[tokio::test]
async fn unknown_session_is_session_not_found() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    // Spec canvas.*: "An unknown session (neither live nor persisted) is SessionNotFound."
    let calls = [
        (
            "canvas.put",
            json!({"sessionId": "telegram:nobody", "artifactId": "a", "type": "note", "content": {}}),
        ),
        (
            "canvas.get",
            json!({"sessionId": "telegram:nobody", "artifactId": "a"}),
        ),
        ("canvas.list", json!({"sessionId": "telegram:nobody"})),
        (
            "canvas.delete",
            json!({"sessionId": "telegram:nobody", "artifactId": "a"}),
        ),
        ("canvas.clear", json!({"sessionId": "telegram:nobody"})),
    ];
    for (method, params) in calls {
        let reply = ws.call(method, params).await;
        assert_code(
            &reply,
            1,
            &format!("{method} on a session that does not exist"),
        );
    }
    let reply = ws
        .call("sessions.get", json!({"sessionId": "telegram:nobody"}))
        .await;
    assert_code(&reply, 1, "canvas calls must not create the session");
    stop(gw, [ws]).await;
}

/// Writes every frame before reading any reply (one WebSocket, one flush), so the daemon has
/// all of them in flight at once; returns the replies by request id, in `ids` order.
async fn pipelined(ws: &mut Ws, requests: &[(i64, Value)]) -> Vec<Value> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    for (id, params) in requests {
        let frame = json!({"id": id, "method": "canvas.put", "params": params});
        ws.stream
            .feed(Message::text(frame.to_string()))
            .await
            .expect("queue frame");
    }
    ws.stream.flush().await.expect("send frames");
    let mut replies = Vec::with_capacity(requests.len());
    for (id, _) in requests {
        replies.push(ws.reply_to(*id).await.1);
    }
    replies
}

/// Issue 11: the per-session cap was checked by the handler before the insert, so puts in
/// flight together all passed the check. 120 new artifacts pipelined on one connection
/// against a cap of 7 (plus oversize ones mixed in): exactly 7 are stored.
#[tokio::test]
async fn pipelined_puts_cannot_exceed_the_per_session_cap_or_the_size_limit() {
    const CAP: usize = 7;
    let gw = TestGateway::start(&format!(
        "[canvas]\nmax_artifacts_per_session = {CAP}\nmax_artifact_bytes = 200\n"
    ))
    .await;
    let mut ws = gw.client().await;
    session(&mut ws, SESSION).await;
    session(&mut ws, "ws:canvas-neighbour").await;

    let mut requests = Vec::new();
    for i in 0..120 {
        // Every tenth one is over max_artifact_bytes (refused whatever the count).
        let text = if i % 10 == 9 {
            "y".repeat(300)
        } else {
            format!("n{i}")
        };
        requests.push((
            10_000 + i,
            json!({"sessionId": SESSION, "artifactId": format!("p{i}"), "type": "note",
                   "content": {"text": text}}),
        ));
    }
    let replies = pipelined(&mut ws, &requests).await;
    let mut stored = 0;
    for ((_, params), reply) in requests.iter().zip(&replies) {
        let oversize = params["content"]["text"]
            .as_str()
            .is_some_and(|t| t.len() > 200);
        if reply.get("result").is_some() {
            assert!(!oversize, "an oversize artifact was stored: {reply}");
            assert_eq!(reply["result"]["created"], json!(true), "{reply}");
            stored += 1;
        } else if oversize {
            assert_invalid(reply, "params.content", "an oversize pipelined put");
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("max_artifact_bytes"), "{reply}");
        } else {
            assert_code(reply, -2, "a put over the per-session cap");
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("max_artifacts_per_session") && message.contains(&CAP.to_string()),
                "the error names the limit: {reply}"
            );
            assert_eq!(
                reply["error"]["data"]["path"],
                json!("params.artifactId"),
                "{reply}"
            );
        }
    }
    assert_eq!(
        stored, CAP,
        "exactly the cap is stored out of 108 new artifacts"
    );
    let list = call_ok(
        &mut ws,
        "canvas.list",
        json!({"sessionId": SESSION, "limit": 1000}),
    )
    .await;
    assert_eq!(ids(&list).len(), CAP, "{list}");

    // Replacing a stored artifact at the cap still works, also when pipelined; a new one does not.
    let first = ids(&list)[0].clone();
    let replies = pipelined(
        &mut ws,
        &[
            (
                20_000,
                json!({"sessionId": SESSION, "artifactId": first, "type": "note",
                       "content": {"v": 2}}),
            ),
            (
                20_001,
                json!({"sessionId": SESSION, "artifactId": "one-more", "type": "note",
                       "content": {}}),
            ),
            (
                20_002,
                json!({"sessionId": "ws:canvas-neighbour", "artifactId": "own-budget",
                       "type": "note", "content": {}}),
            ),
        ],
    )
    .await;
    assert_eq!(
        replies[0]["result"]["created"],
        json!(false),
        "{}",
        replies[0]
    );
    assert_code(&replies[1], -2, "a new artifact at the cap");
    assert_eq!(
        replies[2]["result"]["created"],
        json!(true),
        "another session: {}",
        replies[2]
    );
    stop(gw, [ws]).await;
}
