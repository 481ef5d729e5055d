//! `canvas.*` over a real WebSocket against the in-process daemon and its SQLite store:
//! upsert semantics, get/list/delete/clear, size limits, unknown artifacts and sessions, and
//! persistence across a restart.
//!
//! Well-formed calls go through the generated typed client. Raw on purpose: malformed params,
//! the first put's exact reply (which members are absent is the point), and the pipelined puts
//! (frames written together on one socket).
//!
//! Expected behaviour: issue 7, spec/flynn.openrpc.json `canvas.*` (and the x-decisions
//! "gates-and-not-found" and "agent-send-new-session": an unknown artifact is -2 on
//! `params.artifactId`, an unknown session is SessionNotFound).

use std::num::NonZeroU64;

use crate::method_checks;
use crate::support;
use crate::support::sid;

use flynn_protocol::types::{self, CanvasArtifact, CanvasListResult, CanvasPutResult};
use flynn_protocol::wire::{ClientError, RpcError};
use method_checks::{assert_code, assert_invalid, call_ok, now_ms, restart, stop, wait_past};
use serde_json::{Map, Value, json};
use support::{TestClient, TestGateway, Ws, rpc_error};

const SESSION: &str = "ws:canvas-tests";

/// Creates (persists) `session` so canvas calls address an existing session.
async fn session(client: &TestClient, session: &str) {
    client
        .sessions_create(types::SessionsCreateParams {
            session_id: Some(sid(session)),
        })
        .await
        .unwrap_or_else(|e| panic!("sessions.create {session}: {e}"));
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("a JSON object: {other}"),
    }
}

fn put_params(session: &str, artifact: &str, content: Value) -> types::CanvasPutParams {
    types::CanvasPutParams {
        session_id: sid(session),
        artifact_id: artifact.to_owned(),
        type_: "note".to_owned(),
        title: None,
        content: object(content),
        metadata: Map::new(),
    }
}

async fn try_put(
    client: &TestClient,
    params: types::CanvasPutParams,
) -> Result<CanvasPutResult, ClientError> {
    client.canvas_put(params).await
}

async fn put(
    client: &TestClient,
    session: &str,
    artifact: &str,
    content: Value,
) -> CanvasPutResult {
    try_put(client, put_params(session, artifact, content))
        .await
        .unwrap_or_else(|e| panic!("canvas.put {session} {artifact}: {e}"))
}

async fn get(
    client: &TestClient,
    session: &str,
    artifact: &str,
) -> Result<CanvasArtifact, ClientError> {
    client
        .canvas_get(types::CanvasGetParams {
            session_id: sid(session),
            artifact_id: artifact.to_owned(),
        })
        .await
        .map(|r| r.artifact)
}

async fn list_limited(client: &TestClient, session: &str, limit: u64) -> CanvasListResult {
    client
        .canvas_list(types::CanvasListParams {
            session_id: sid(session),
            limit: NonZeroU64::new(limit).expect("a limit above 0"),
        })
        .await
        .unwrap_or_else(|e| panic!("canvas.list {session}: {e}"))
}

/// `canvas.list` with the spec's default limit (100).
async fn list(client: &TestClient, session: &str) -> CanvasListResult {
    list_limited(client, session, 100).await
}

async fn delete(client: &TestClient, session: &str, artifact: &str) -> types::CanvasDeleteResult {
    client
        .canvas_delete(types::CanvasDeleteParams {
            session_id: sid(session),
            artifact_id: artifact.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("canvas.delete {session} {artifact}: {e}"))
}

async fn clear(client: &TestClient, session: &str) -> types::CanvasClearResult {
    client
        .canvas_clear(types::CanvasClearParams {
            session_id: sid(session),
        })
        .await
        .unwrap_or_else(|e| panic!("canvas.clear {session}: {e}"))
}

fn ids(list: &CanvasListResult) -> Vec<String> {
    list.artifacts
        .iter()
        .map(|a| a.artifact_id.clone())
        .collect()
}

/// Checks an InvalidRequest (-2) error naming `path`, with a message (the typed twin of
/// `method_checks::assert_invalid`).
fn assert_invalid_error(error: &RpcError, path: &str, what: &str) {
    assert_invalid(&json!({ "error": error }), path, what);
}

#[tokio::test]
async fn put_is_an_upsert_that_keeps_created_at_and_advances_updated_at() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;

    // Raw: the exact reply, absent members included, is what this checks.
    let t0 = now_ms();
    let first = client
        .raw(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "summary-card", "type": "note",
                   "title": "Draft Summary", "content": {"markdown": "## Notes"},
                   "metadata": {"lane": "analysis"}}),
        )
        .await;
    let t1 = now_ms();
    let first = method_checks::ok(&first);
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
    let second = client
        .raw(
            "canvas.put",
            json!({"sessionId": SESSION, "artifactId": "summary-card", "type": "markdown",
                   "content": {"markdown": "## Final"}}),
        )
        .await;
    let second = method_checks::ok(&second);
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
    let replaced: CanvasArtifact =
        serde_json::from_value(replaced.clone()).expect("the artifact decodes");

    let got = get(&client, SESSION, "summary-card")
        .await
        .expect("canvas.get");
    assert_eq!(got, replaced);
    let listed = list(&client, SESSION).await;
    assert_eq!(listed.artifacts, [replaced], "one artifact, not two");
    gw.stop().await;
}

#[tokio::test]
async fn list_is_newest_first_and_delete_and_clear_remove_artifacts() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
    session(&client, "ws:other-canvas").await;
    put(&client, "ws:other-canvas", "elsewhere", json!({"n": 0})).await;

    let mut last = 0;
    for (i, id) in ["alpha", "beta", "gamma"].iter().enumerate() {
        wait_past(last).await;
        let r = put(&client, SESSION, id, json!({"n": i})).await;
        last = r.artifact.updated_at;
    }
    let listed = list(&client, SESSION).await;
    assert_eq!(
        ids(&listed),
        ["gamma", "beta", "alpha"],
        "newest first: {listed:?}"
    );
    // Touching the oldest makes it the newest.
    wait_past(last).await;
    put(&client, SESSION, "alpha", json!({"n": 10})).await;
    let listed = list(&client, SESSION).await;
    assert_eq!(
        ids(&listed),
        ["alpha", "gamma", "beta"],
        "by updatedAt: {listed:?}"
    );
    let limited = list_limited(&client, SESSION, 2).await;
    assert_eq!(ids(&limited), ["alpha", "gamma"]);
    // Malformed (the typed limit cannot be 0): raw.
    let reply = client
        .raw("canvas.list", json!({"sessionId": SESSION, "limit": 0}))
        .await;
    assert_invalid(&reply, "params.limit", "limit 0");

    let deleted = delete(&client, SESSION, "gamma").await;
    assert_eq!(deleted, types::CanvasDeleteResult { deleted: true });
    let again = delete(&client, SESSION, "gamma").await;
    assert_eq!(
        again,
        types::CanvasDeleteResult { deleted: false },
        "delete is idempotent"
    );
    let listed = list(&client, SESSION).await;
    assert_eq!(ids(&listed), ["alpha", "beta"]);

    let cleared = clear(&client, SESSION).await;
    assert_eq!(cleared, types::CanvasClearResult { deleted: 2 });
    let listed = list(&client, SESSION).await;
    assert_eq!(listed, CanvasListResult { artifacts: vec![] });
    let cleared = clear(&client, SESSION).await;
    assert_eq!(cleared, types::CanvasClearResult { deleted: 0 });
    // Other sessions are untouched.
    let other = list(&client, "ws:other-canvas").await;
    assert_eq!(ids(&other), ["elsewhere"]);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_artifact_is_invalid_request_on_artifact_id() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
    put(&client, SESSION, "exists", json!({})).await;
    let error = rpc_error(get(&client, SESSION, "missing").await);
    assert_invalid_error(
        &error,
        "params.artifactId",
        "canvas.get of an unknown artifact",
    );
    assert!(
        error.message.contains("missing"),
        "the message names the artifact: {error:?}"
    );
    // The same artifact id in another session is another artifact.
    session(&client, "ws:canvas-elsewhere").await;
    let error = rpc_error(get(&client, "ws:canvas-elsewhere", "exists").await);
    assert_invalid_error(
        &error,
        "params.artifactId",
        "an artifact of another session",
    );
    gw.stop().await;
}

#[tokio::test]
async fn malformed_put_params_name_the_offending_member() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
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
        let reply = client.raw("canvas.put", params.clone()).await;
        assert_invalid(&reply, path, &format!("canvas.put {params}"));
    }
    let listed = list(&client, SESSION).await;
    assert_eq!(
        listed,
        CanvasListResult { artifacts: vec![] },
        "nothing was stored"
    );
    gw.stop().await;
}

#[tokio::test]
async fn artifact_size_limit_is_enforced_with_a_clear_error() {
    let gw = TestGateway::start("[canvas]\nmax_artifact_bytes = 100\n").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
    // `{"text":"…"}` is 11 bytes of JSON around the text; the type `note` counts 4.
    let at_limit = json!({"text": "x".repeat(85)});
    assert_eq!(at_limit.to_string().len() + "note".len(), 100);
    let r = put(&client, SESSION, "fits", at_limit).await;
    assert!(r.created);

    let over = json!({"text": "x".repeat(86)});
    let error = rpc_error(try_put(&client, put_params(SESSION, "too-big", over)).await);
    assert_invalid_error(
        &error,
        "params.content",
        "an artifact over max_artifact_bytes",
    );
    let message = &error.message;
    assert!(
        message.contains("101")
            && message.contains("100")
            && message.contains("max_artifact_bytes"),
        "the error gives the size, the limit and the setting: {message}"
    );
    // Replacing an existing artifact with an oversize one is refused too and keeps the old one.
    let error = rpc_error(
        try_put(
            &client,
            put_params(SESSION, "fits", json!({"text": "y".repeat(500)})),
        )
        .await,
    );
    assert_invalid_error(&error, "params.content", "an oversize replacement");
    // The renderer hint is stored too, so it counts: a small content cannot carry a huge type.
    let error = rpc_error(
        try_put(
            &client,
            types::CanvasPutParams {
                type_: "t".repeat(5000),
                ..put_params(SESSION, "big-type", json!({}))
            },
        )
        .await,
    );
    assert_invalid_error(&error, "params.content", "a type over max_artifact_bytes");
    let got = get(&client, SESSION, "fits").await.expect("canvas.get");
    assert_eq!(got.content["text"], json!("x".repeat(85)));
    let listed = list(&client, SESSION).await;
    assert_eq!(ids(&listed), ["fits"]);
    gw.stop().await;
}

#[tokio::test]
async fn artifact_count_per_session_is_limited() {
    let gw = TestGateway::start("[canvas]\nmax_artifacts_per_session = 3\n").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
    session(&client, "ws:canvas-second").await;
    for id in ["a1", "a2", "a3"] {
        put(&client, SESSION, id, json!({"id": id})).await;
    }
    let error = rpc_error(try_put(&client, put_params(SESSION, "a4", json!({}))).await);
    let reply = json!({ "error": error });
    assert_code(
        &reply,
        -2,
        "a fourth artifact with max_artifacts_per_session = 3",
    );
    let message = &error.message;
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
    let r = put(&client, SESSION, "a2", json!({"id": "a2", "v": 2})).await;
    assert!(!r.created);
    put(&client, "ws:canvas-second", "b1", json!({})).await;
    // Deleting one makes room.
    delete(&client, SESSION, "a1").await;
    let r = put(&client, SESSION, "a4", json!({})).await;
    assert!(r.created);
    let listed = list(&client, SESSION).await;
    let mut listed = ids(&listed);
    listed.sort();
    assert_eq!(listed, ["a2", "a3", "a4"]);
    gw.stop().await;
}

#[tokio::test]
async fn artifacts_survive_a_restart() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, SESSION).await;
    let stored = try_put(
        &client,
        types::CanvasPutParams {
            type_: "table".into(),
            title: Some("Costs".into()),
            metadata: object(json!({"source": "test", "n": 3.5})),
            ..put_params(
                SESSION,
                "table-1",
                json!({"rows": [["a", 1], ["b", 2]], "nested": {"ok": true}}),
            )
        },
    )
    .await
    .expect("canvas.put")
    .artifact;
    drop(client);

    let gw = restart(gw, "").await;
    let client = gw.typed_client().await;
    let got = get(&client, SESSION, "table-1").await.expect("canvas.get");
    assert_eq!(got, stored, "the same artifact after a restart");
    let listed = list(&client, SESSION).await;
    assert_eq!(listed.artifacts, [stored]);
    gw.stop().await;
}

#[tokio::test]
async fn artifacts_are_deleted_with_their_session() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    session(&client, "ws:doomed").await;
    put(&client, "ws:doomed", "card", json!({"x": 1})).await;
    client
        .sessions_delete(types::SessionsDeleteParams {
            session_id: sid("ws:doomed"),
        })
        .await
        .expect("sessions.delete");
    session(&client, "ws:doomed").await;
    let listed = list(&client, "ws:doomed").await;
    assert_eq!(
        listed,
        CanvasListResult { artifacts: vec![] },
        "spec canvas.put: artifacts are deleted with their session"
    );
    gw.stop().await;
}

#[tokio::test]
async fn unknown_session_is_session_not_found() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    // Spec canvas.*: "An unknown session (neither live nor persisted) is SessionNotFound."
    const NOBODY: &str = "telegram:nobody";
    let list_error = client
        .canvas_list(types::CanvasListParams {
            session_id: sid(NOBODY),
            limit: NonZeroU64::new(100).expect("100 is not zero"),
        })
        .await
        .map(drop);
    let delete_error = client
        .canvas_delete(types::CanvasDeleteParams {
            session_id: sid(NOBODY),
            artifact_id: "a".into(),
        })
        .await
        .map(drop);
    let clear_error = client
        .canvas_clear(types::CanvasClearParams {
            session_id: sid(NOBODY),
        })
        .await
        .map(drop);
    let results = [
        (
            "canvas.put",
            try_put(&client, put_params(NOBODY, "a", json!({})))
                .await
                .map(drop),
        ),
        ("canvas.get", get(&client, NOBODY, "a").await.map(drop)),
        ("canvas.list", list_error),
        ("canvas.delete", delete_error),
        ("canvas.clear", clear_error),
    ];
    for (method, result) in results {
        let reply = json!({ "error": rpc_error(result) });
        assert_code(
            &reply,
            1,
            &format!("{method} on a session that does not exist"),
        );
    }
    let error = rpc_error(
        client
            .sessions_get(types::SessionsGetParams {
                session_id: sid(NOBODY),
                history_limit: NonZeroU64::new(200).expect("200 is not zero"),
            })
            .await,
    );
    assert_code(
        &json!({ "error": error }),
        1,
        "canvas calls must not create the session",
    );
    gw.stop().await;
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
    call_ok(&mut ws, "sessions.create", json!({"sessionId": SESSION})).await;
    call_ok(
        &mut ws,
        "sessions.create",
        json!({"sessionId": "ws:canvas-neighbour"}),
    )
    .await;

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
    let listed: Vec<String> = list["artifacts"]
        .as_array()
        .unwrap_or_else(|| panic!("canvas.list has `artifacts`: {list}"))
        .iter()
        .map(|a| a["artifactId"].as_str().expect("artifactId").to_owned())
        .collect();
    assert_eq!(listed.len(), CAP, "{list}");

    // Replacing a stored artifact at the cap still works, also when pipelined; a new one does not.
    let first = listed[0].clone();
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
