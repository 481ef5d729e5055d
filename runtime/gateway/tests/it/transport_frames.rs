//! Frame handling over a real WebSocket: every class of bad frame gets the documented error
//! (-1, -2 with `data.path`, -3) and the connection survives it; ids and `"jsonrpc":"2.0"` are
//! echoed; events carry `seq`; an oversize frame closes only its own connection with 1009.
//! The rules are those of spec/flynn.openrpc.json `x-wire` and `x-decisions`.

use crate::support;

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::{TestGateway, Ws};
use tokio_tungstenite::tungstenite::Message;

/// Sends one raw text frame and returns the next frame the server sends.
async fn raw(ws: &mut Ws, text: &str) -> Value {
    ws.send_text(text).await;
    ws.next_frame()
        .await
        .expect("a reply before the connection closes")
}

/// A following `system.info` still works: the connection survived.
async fn assert_alive(ws: &mut Ws, after: &str) {
    let reply = ws.call("system.info", json!({})).await;
    assert!(
        reply["result"]["version"].is_string(),
        "the connection must survive {after}; system.info got {reply}"
    );
}

/// Checks an error reply: its code, its id, and (when given) `error.data.path`.
fn assert_error(reply: &Value, code: i64, id: &Value, path: Option<&str>, frame: &str) {
    assert_eq!(
        reply["error"]["code"],
        json!(code),
        "code for {frame}: {reply}"
    );
    assert_eq!(&reply["id"], id, "id for {frame}: {reply}");
    assert!(
        reply.get("result").is_none(),
        "an error reply has no result ({frame}): {reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error says what was wrong ({frame}): {reply}"
    );
    if let Some(path) = path {
        assert_eq!(
            reply["error"]["data"]["path"],
            json!(path),
            "data.path for {frame}: {reply}"
        );
    }
}

#[tokio::test]
async fn invalid_json_is_parse_error_with_null_id() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for frame in [
        "{\"id\":1,\"method\":",
        "not json at all",
        "{\"id\":1,}",
        "{\"id\":1,\"method\":\"system.info\"} trailing",
        "",
    ] {
        let reply = raw(&mut ws, frame).await;
        assert_error(&reply, -1, &Value::Null, None, frame);
        assert_alive(&mut ws, frame).await;
    }
}

#[tokio::test]
async fn frames_that_are_not_objects_are_invalid_requests() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for frame in [
        // An empty batch is one invalid request (JSON-RPC 2.0 section 6).
        "[]",
        "42",
        "\"system.info\"",
        "null",
        "true",
    ] {
        let reply = raw(&mut ws, frame).await;
        assert_error(&reply, -2, &Value::Null, None, frame);
        assert_alive(&mut ws, frame).await;
    }
    // A non-empty array is a batch: each entry that is not a request object gets its own -2
    // with id null, in one array; an array laid out like the request's fields is not taken for
    // a request.
    for (frame, entries) in [
        ("[1, 2, 3]", 3),
        ("[7, \"2.0\", \"system.info\", {}]", 4),
        ("[7, null, \"system.info\"]", 3),
    ] {
        let reply = raw(&mut ws, frame).await;
        let replies = reply.as_array().cloned().unwrap_or_default();
        assert_eq!(
            replies.len(),
            entries,
            "one reply per entry of {frame}: {reply}"
        );
        for entry in &replies {
            assert_eq!(entry["error"]["code"], json!(-2), "{frame}: {entry}");
            assert_eq!(entry["id"], Value::Null, "{frame}: {entry}");
        }
        assert_alive(&mut ws, frame).await;
    }
    // A batch of one request is answered with an array of one reply.
    let reply = raw(&mut ws, "[{\"id\":1,\"method\":\"system.info\"}]").await;
    assert_eq!(reply[0]["id"], json!(1), "{reply}");
    assert!(reply[0]["result"]["version"].is_string(), "{reply}");
}

#[tokio::test]
async fn missing_or_non_string_method_is_invalid_request_naming_method() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let cases = [
        ("{\"id\":11}", json!(11)),
        ("{\"id\":12,\"params\":{}}", json!(12)),
        ("{\"id\":13,\"method\":42}", json!(13)),
        ("{\"id\":\"m\",\"method\":null}", json!("m")),
        ("{\"id\":14,\"method\":[\"system.info\"]}", json!(14)),
    ];
    for (frame, id) in cases {
        let reply = raw(&mut ws, frame).await;
        assert_error(&reply, -2, &id, Some("method"), frame);
        assert_alive(&mut ws, frame).await;
    }
}

#[tokio::test]
async fn bad_id_types_are_invalid_requests_naming_id() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for frame in [
        "{\"method\":\"system.info\"}",
        "{\"id\":null,\"method\":\"system.info\"}",
        "{\"id\":1.5,\"method\":\"system.info\"}",
        "{\"id\":2.0,\"method\":\"system.info\"}",
        "{\"id\":{\"a\":1},\"method\":\"system.info\"}",
        "{\"id\":true,\"method\":\"system.info\"}",
        "{\"id\":[1],\"method\":\"system.info\"}",
    ] {
        let reply = raw(&mut ws, frame).await;
        assert_error(&reply, -2, &Value::Null, Some("id"), frame);
        assert_alive(&mut ws, frame).await;
    }
}

#[tokio::test]
async fn ids_are_echoed_unchanged() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let ids = [
        json!("a-string-id"),
        json!("ünïcødé ✓"),
        json!(""),
        json!("42"),
        json!(0),
        json!(-7),
        // 2^53 + 1: not representable as a double, so it must not go through one.
        json!(9_007_199_254_740_993_i64),
        json!(i64::MAX),
        json!(i64::MIN),
    ];
    for id in ids {
        let frame = json!({ "id": id, "method": "system.info" });
        let reply = raw(&mut ws, &frame.to_string()).await;
        assert_eq!(reply["id"], id, "id echoed: {reply}");
        assert!(reply["result"]["version"].is_string(), "{reply}");
        assert!(
            reply.get("jsonrpc").is_none(),
            "no jsonrpc unless sent: {reply}"
        );
        // Error replies echo the id too.
        let frame = json!({ "id": id, "method": "no.such.method" });
        let reply = raw(&mut ws, &frame.to_string()).await;
        assert_error(&reply, -3, &id, None, &frame.to_string());
    }
}

#[tokio::test]
async fn jsonrpc_marker_is_echoed_on_results_and_errors() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = raw(
        &mut ws,
        r#"{"jsonrpc":"2.0","id":"j1","method":"system.info","params":{}}"#,
    )
    .await;
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_eq!(reply["id"], "j1");
    assert!(reply["result"].is_object(), "{reply}");

    let reply = raw(&mut ws, r#"{"jsonrpc":"2.0","id":2,"method":"nope"}"#).await;
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_error(&reply, -3, &json!(2), None, "unknown method with jsonrpc");

    let reply = raw(
        &mut ws,
        r#"{"jsonrpc":"2.0","id":3,"method":"sessions.get","params":{"sessionId":5}}"#,
    )
    .await;
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_error(
        &reply,
        -2,
        &json!(3),
        Some("params.sessionId"),
        "bad params with jsonrpc",
    );

    let reply = raw(
        &mut ws,
        r#"{"jsonrpc":"2.0","id":4,"method":"sessions.get","params":{"sessionId":"nobody:here"}}"#,
    )
    .await;
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_error(&reply, 1, &json!(4), None, "method error with jsonrpc");

    // Only "2.0" is a valid marker.
    let reply = raw(
        &mut ws,
        r#"{"jsonrpc":"1.0","id":5,"method":"system.info"}"#,
    )
    .await;
    assert_eq!(reply["error"]["code"], -2, "{reply}");
    assert_eq!(reply["error"]["data"]["path"], "jsonrpc", "{reply}");
    assert_alive(&mut ws, "a bad jsonrpc marker").await;
}

#[tokio::test]
async fn jsonrpc_marker_is_echoed_on_events() {
    // x-wire: "A request carrying "jsonrpc": "2.0" gets it echoed on every reply and event".
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    ws.send_text(
        r#"{"jsonrpc":"2.0","id":"ev","method":"agent.send","params":{"message":"hello there"}}"#,
    )
    .await;
    let mut events = Vec::new();
    let reply = loop {
        let frame = ws.next_frame().await.expect("frames until the reply");
        if frame.get("event").is_some() {
            events.push(frame);
        } else {
            break frame;
        }
    };
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert!(!events.is_empty(), "agent.send emits at least `done`");
    for event in &events {
        assert_eq!(
            event["jsonrpc"], "2.0",
            "event of a jsonrpc request: {event}"
        );
    }
}

#[tokio::test]
async fn events_carry_a_per_connection_seq_from_one() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let mut seqs = Vec::new();
    for message in ["first message", "second message"] {
        let id = ws
            .request("agent.send", json!({ "message": message }))
            .await;
        let (events, reply) = ws.reply_to(id).await;
        assert!(reply["result"]["content"].is_string(), "{reply}");
        assert_eq!(
            events.last().map(|e| e["event"].clone()),
            Some(json!("done")),
            "done is the last event before the reply: {events:?}"
        );
        seqs.extend(events.iter().map(|e| e["seq"].as_u64().expect("seq")));
    }
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "seq counts every event of the connection");
    // Another connection starts its own count.
    let mut other = gw.client().await;
    let id = other
        .request("agent.send", json!({ "message": "hi" }))
        .await;
    let (events, _) = other.reply_to(id).await;
    assert_eq!(events[0]["seq"], 1, "{}", events[0]);
}

#[tokio::test]
async fn unknown_method_is_minus_three_naming_it() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for method in ["nope", "system.Info", "sessions.list.extra", "system.info "] {
        let id = ws.request(method, json!({})).await;
        let (_, reply) = ws.reply_to(id).await;
        assert_error(&reply, -3, &json!(id), None, method);
        assert_eq!(reply["error"]["data"]["method"], method, "{reply}");
        assert_alive(&mut ws, method).await;
    }
}

#[tokio::test]
async fn params_of_the_wrong_type_are_minus_two_naming_the_field() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let cases = [
        (
            "sessions.get",
            json!({ "sessionId": 5 }),
            "params.sessionId",
        ),
        ("sessions.get", json!({}), "params.sessionId"),
        (
            "sessions.get",
            json!({ "sessionId": "a:b", "historyLimit": "all" }),
            "params.historyLimit",
        ),
        ("sessions.list", json!({ "limit": "ten" }), "params.limit"),
        ("sessions.list", json!({ "limit": -1 }), "params.limit"),
        ("sessions.list", json!({ "limit": 0 }), "params.limit"),
        ("sessions.list", json!({ "limit": 1.5 }), "params.limit"),
        ("sessions.list", json!({ "offset": -3 }), "params.offset"),
        (
            "sessions.list",
            json!({ "includePersisted": "yes" }),
            "params.includePersisted",
        ),
        ("sessions.list", json!({ "frontend": 7 }), "params.frontend"),
        (
            "pairing.generate",
            json!({ "channel": ["telegram"] }),
            "params.channel",
        ),
        (
            "agent.send",
            json!({ "message": "x", "attachments": [{ "mimeType": "image/png", "data": 5 }] }),
            "params.attachments[0].data",
        ),
        (
            "agent.send",
            json!({ "message": "x", "attachments": [{ "mimeType": "image/png" }] }),
            "params.attachments[0].data",
        ),
    ];
    for (method, params, path) in cases {
        let id = ws.request(method, params.clone()).await;
        let (events, reply) = ws.reply_to(id).await;
        assert!(
            events.is_empty(),
            "no events for a rejected frame: {events:?}"
        );
        assert_error(
            &reply,
            -2,
            &json!(id),
            Some(path),
            &format!("{method} {params}"),
        );
    }
    assert_alive(&mut ws, "params of the wrong type").await;
}

#[tokio::test]
async fn unknown_params_are_minus_two_naming_them() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let cases = [
        ("system.info", json!({ "verbose": true }), "params.verbose"),
        ("sessions.list", json!({ "bogus": 1 }), "params.bogus"),
        (
            "sessions.get",
            json!({ "sessionId": "a:b", "extra": null }),
            "params.extra",
        ),
        (
            "agent.send",
            json!({ "message": "x", "attachments": [{ "mimeType": "a/b", "data": "", "size": 1 }] }),
            "params.attachments[0].size",
        ),
    ];
    for (method, params, path) in cases {
        let id = ws.request(method, params.clone()).await;
        let (_, reply) = ws.reply_to(id).await;
        assert_error(&reply, -2, &json!(id), None, &format!("{method} {params}"));
        let reported = reply["error"]["data"]["path"].as_str().unwrap_or("");
        assert!(
            reported == path,
            "data.path names the unknown member {path}: {reply}"
        );
    }
    assert_alive(&mut ws, "unknown params").await;
}

#[tokio::test]
async fn params_by_position_or_not_an_object_are_rejected() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for frame in [
        r#"{"id":21,"method":"sessions.get","params":["telegram:1"]}"#,
        r#"{"id":21,"method":"system.info","params":"x"}"#,
        r#"{"id":21,"method":"system.info","params":3}"#,
        r#"{"id":21,"method":"system.info","params":true}"#,
    ] {
        let reply = raw(&mut ws, frame).await;
        assert_error(&reply, -2, &json!(21), Some("params"), frame);
    }
    // Omitted, null or empty-array params (what JSON-RPC libraries send for a call without
    // params) are fine for a method without required params.
    for frame in [
        r#"{"id":22,"method":"system.info"}"#,
        r#"{"id":22,"method":"system.info","params":null}"#,
        r#"{"id":22,"method":"system.info","params":[]}"#,
        r#"{"id":22,"method":"system.info","params":{}}"#,
    ] {
        let reply = raw(&mut ws, frame).await;
        assert!(reply["result"]["version"].is_string(), "{frame}: {reply}");
    }
}

#[tokio::test]
async fn unknown_top_level_members_are_rejected() {
    // Decision closed-params: "Unknown top-level frame members are rejected too."
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = raw(&mut ws, r#"{"id":31,"method":"system.info","extra":true}"#).await;
    assert_error(
        &reply,
        -2,
        &json!(31),
        Some("extra"),
        "unknown top-level member",
    );
    assert_alive(&mut ws, "an unknown top-level member").await;
}

#[tokio::test]
async fn binary_frames_are_rejected_and_the_connection_stays() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let request = br#"{"id":1,"method":"system.info"}"#.to_vec();
    ws.stream
        .send(Message::Binary(request.into()))
        .await
        .expect("send binary");
    let reply = ws.next_frame().await.expect("a reply");
    assert_error(&reply, -2, &Value::Null, None, "binary frame");
    assert_alive(&mut ws, "a binary frame").await;
}

#[tokio::test]
async fn oversize_frame_closes_1009_and_spares_other_connections() {
    let gw = TestGateway::start("max_frame_bytes = 4096").await;
    let mut big = gw.client().await;
    let mut other = gw.client().await;

    // Just under the limit: an ordinary reply (here -2: the channel is too long).
    let frame =
        json!({ "id": 1, "method": "pairing.generate", "params": { "channel": "c".repeat(3900) } })
            .to_string();
    assert!(frame.len() < 4096);
    let reply = raw(&mut big, &frame).await;
    assert_eq!(
        reply["id"], 1,
        "a frame under the limit is answered: {reply}"
    );

    let frame =
        json!({ "id": 2, "method": "pairing.generate", "params": { "channel": "c".repeat(5000) } })
            .to_string();
    big.send_text(&frame).await;
    assert_eq!(
        big.close_code().await,
        Some(1009),
        "a frame over server.max_frame_bytes closes the connection with 1009"
    );

    assert_alive(&mut other, "another connection's oversize frame").await;
    let mut fresh = gw.client().await;
    assert_alive(&mut fresh, "another connection's oversize frame").await;
}
