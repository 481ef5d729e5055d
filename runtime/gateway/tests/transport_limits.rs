//! Transport limits from config: `server.max_connections` (HTTP 503 beyond it),
//! `server.outbound_buffer_frames` (a client that does not read is closed with 1008 and the
//! close frame reaches it), and `server.ping_interval_ms` (a client answering pings stays, one
//! that never answers is closed after two missed pongs).

mod support;

#[path = "support/raw_http.rs"]
mod raw_http;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use raw_http::{http_get, raw_upgrade, read_raw_frame, refused_upgrade};
use serde_json::json;
use support::{TestGateway, Ws};
use tokio_tungstenite::MaybeTlsStream;
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

/// A client whose socket receive buffer is tiny, so that when it does not read, the kernel
/// buffers fill up and the gateway really has to hold (or drop) frames itself.
async fn tiny_buffer_client(gw: &TestGateway) -> raw_http::WsStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(gw.addr).await.expect("tcp connect");
    let (ws, _) = tokio_tungstenite::client_async(gw.url(), MaybeTlsStream::Plain(tcp))
        .await
        .expect("websocket handshake");
    ws
}

/// About 10 000 content events (~700 KB): far more than the socket buffers hold.
const FLOOD: &str = r#"{"id":1,"method":"agent.send","params":{"message":"[[long:30000]]"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_1008() {
    let gw = TestGateway::start("outbound_buffer_frames = 4").await;
    let mut slow = tiny_buffer_client(&gw).await;
    let mut other = gw.client().await;
    slow.send(Message::text(FLOOD)).await.expect("send");
    // The client does not read for a while; another connection is served meanwhile.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let info = other.call("system.info", json!({})).await;
    assert!(
        info["result"]["version"].is_string(),
        "other connections unaffected: {info}"
    );

    // Now read: whatever frames were written before the overflow, then close 1008.
    let mut frames = 0usize;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .unwrap_or_else(|_| {
                panic!("the server closes the slow consumer; {frames} frames read, then silence")
            }) {
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
    assert!(
        frames < 10_000,
        "the server stopped queueing events: {frames} frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_released() {
    // The gateway must not keep a connection (and its task) forever because the peer stopped
    // reading: once its buffer overflowed it is closed within the close handshake's bound.
    let gw = TestGateway::start("outbound_buffer_frames = 4").await;
    let mut slow = tiny_buffer_client(&gw).await;
    slow.send(Message::text(FLOOD)).await.expect("send");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let connections = http_get(gw.addr, "/health", &[]).await.json()["connections"].clone();
        if connections == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a connection that never reads is still held after 6 s ({connections} open)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(slow);
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
