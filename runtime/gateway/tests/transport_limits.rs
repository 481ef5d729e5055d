//! Transport limits from config: `server.max_connections` (HTTP 503 beyond it),
//! `server.outbound_buffer_frames` (a client that does not read is closed with 1008 and the
//! close frame reaches it), and `server.ping_interval_ms` (a client answering pings stays, one
//! that never answers is closed after two missed pongs).

mod support;

#[path = "support/raw_http.rs"]
mod raw_http;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use raw_http::{http_get, raw_upgrade, read_raw_frame, refused_upgrade};
use serde_json::json;
use support::{TestGateway, Ws};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn connections_beyond_max_connections_get_503() {
    let gw = TestGateway::start("max_connections = 3").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut ws = gw.client().await;
        let info = ws.call("system.info", json!({})).await;
        assert!(info["result"]["version"].is_string(), "{info}");
        open.push(ws);
    }
    let (status, body) = refused_upgrade(&gw.url(), &[]).await;
    assert_eq!(status, 503, "the 4th upgrade is refused: {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // HTTP is not a WebSocket connection: health still answers.
    let health = http_get(gw.addr, "/health", &[]).await;
    assert_eq!(health.status, 200, "{health:?}");

    // Closing one frees its slot.
    let mut first = open.remove(0);
    first.stream.close(None).await.expect("close");
    while first.stream.next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(gw.addr, "/health", &[]).await.json()["connections"] != 2 {
        assert!(
            Instant::now() < deadline,
            "the closed connection's slot is released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = gw.client().await;
    let info = again.call("system.info", json!({})).await;
    assert_eq!(info["result"]["connections"], 3, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_1008() {
    let gw = TestGateway::start("outbound_buffer_frames = 4").await;
    let mut slow = gw.client().await;
    let mut other = gw.client().await;
    // ~1000 content events; the client does not read while they are produced.
    slow.request("agent.send", json!({ "message": "[[long:3000]]" }))
        .await;
    // Meanwhile another connection is served normally.
    let info = other.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Now read: whatever frames were written, then the close frame with 1008.
    let mut frames = 0usize;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.stream.next())
            .await
            .expect("the server closes the slow consumer")
        {
            Some(Ok(Message::Text(_))) => frames += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                panic!("the connection broke without a close frame after {frames} frames: {e}")
            }
            None => panic!("the connection ended without a close frame after {frames} frames"),
        }
    };
    assert_eq!(
        close,
        Some(1008),
        "slow consumer close code after {frames} frames"
    );
    assert!(frames < 1000, "the server stopped writing: {frames} frames");

    let info = other.call("system.info", json!({})).await;
    assert!(
        info["result"]["version"].is_string(),
        "other connections unaffected: {info}"
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let gw = TestGateway::start("ping_interval_ms = 200").await;
    let mut ws = gw.client().await;
    // Reading is what makes tungstenite answer pings; read for ~1.2 s (6 ping intervals).
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    loop {
        match tokio::time::timeout_at(until, ws.stream.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(frame)))) => {
                panic!("closed although pongs were sent: {frame:?}")
            }
            Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            Ok(Some(Err(e))) => panic!("connection broke: {e}"),
            Ok(None) => panic!("connection ended although pongs were sent"),
        }
    }
    assert!(pings >= 4, "pings every 200 ms, saw {pings} in 1.2 s");
    let info = ws.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_after_two_missed_pongs() {
    let gw = TestGateway::start("ping_interval_ms = 200").await;
    let mut raw = raw_upgrade(gw.addr).await;
    let start = Instant::now();
    let mut pings = 0;
    let close = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), read_raw_frame(&mut raw))
            .await
            .expect("the server acts within 5 s")
            .expect("a close frame before the end of the stream");
        match frame.opcode {
            0x9 => pings += 1,
            0x8 => break frame.close_code(),
            other => panic!("unexpected opcode {other}"),
        }
    };
    let elapsed = start.elapsed();
    assert_eq!(close, Some(1008), "closed for missing pongs");
    assert_eq!(pings, 2, "closed after exactly two unanswered pings");
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(2000),
        "closed at the third interval (~600 ms), took {elapsed:?}"
    );
    // The answering client next to it is unaffected.
    let mut ws: Ws = gw.client().await;
    let info = ws.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}
