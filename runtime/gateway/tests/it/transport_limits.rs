//! Transport limits from config: `server.max_connections` (HTTP 503 beyond it),
//! `server.outbound_buffer_frames` (a client that does not read is closed with 1008 and the
//! close frame reaches it), and `server.ping_interval_ms` (a client answering pings stays, one
//! that never answers is closed after two missed pongs).
//!
//! Nothing here depends on the machine's speed: waits poll with a generous [`LIVENESS`] bound
//! far above any load, against alternatives that never happen at all (a connection held
//! forever, a close that never comes), and the ping tests count pings instead of timing them.

use crate::support;

use crate::support::agent::{Conn, history, hold, release};
use crate::support::raw_http;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
/// How long a condition may take to come about before the test fails: far above what any load
/// makes it take, so a failure means it was never going to happen.
const LIVENESS: Duration = Duration::from_secs(120);

use raw_http::{
    http_get, masked_text_frame, raw_upgrade, raw_upgrade_sending, read_raw_frame, refused_upgrade,
};
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
    let deadline = Instant::now() + LIVENESS;
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

/// A small outbound buffer (16 frames: more than the 8 events the flood's runs emit at the
/// same instant, so only a blocked writer can overflow it) and a model that accepts huge
/// prompts.
const SLOW_CONFIG: &str = "outbound_buffer_frames = 16\n\n[models.tiers.default]\nkind = \"embedded\"\ncontext_window = 4000000\n";

/// [`SLOW_CONFIG`] where writes wait (ten minutes) for a client that does not read: a blocked
/// write waits for the overflow however slowly the runs make it come (default: 10 s, then the
/// connection is dropped without a close code), and the close frame waits for the client to
/// read its way to it, whenever the test is ready (default: 3 s).
const SLOW_CONFIG_PATIENT: &str = "outbound_buffer_frames = 16\nwrite_stall_timeout_ms = 600000\nclose_delivery_timeout_ms = 600000\n\n[models.tiers.default]\nkind = \"embedded\"\ncontext_window = 4000000\n";

/// Runs of the flood, each in its own session (so they run in parallel).
const FLOOD_RUNS: usize = 8;
/// Frames a flood run sends when nothing is dropped: 11 content events, `done`, the reply.
const FLOOD_FRAMES_PER_RUN: usize = 13;

/// Starts `FLOOD_RUNS` runs whose echoed answers stream as ~90 KB content events every 50 ms
/// (then a ~900 KB `done` and reply each): about 21 MB of frames, far more than the socket
/// buffers hold (the sending side autotunes up to tcp_wmem max, 4 MiB by default). The pace
/// lets the gateway keep up while the socket takes data, so its buffer overflows only once the
/// socket is full: the case of a client that stopped reading.
///
/// Every request is read by the gateway before any run streams: each flood session is first
/// held by a run waiting for a tool approval on `holder`, the flood requests queue behind them,
/// a `sessions.get` on the slow connection (answered only once the requests before it were
/// handed to their lanes) is read back while nothing streams yet, and only then are the holds
/// released. Otherwise, on a loaded machine, the gateway could close the slow connection before
/// reading its last requests (reading meanwhile does not prevent it: the tiny receive buffer
/// makes the client slower than the flood), and those runs would never happen.
///
/// Returns how many messages a flood session holds once its run is stored (the held turn's,
/// measured on a control session, plus the flood run's two).
async fn flood(ws: &mut raw_http::WsStream, holder: &mut Conn) -> usize {
    let control = hold(holder, "control:held").await;
    release(holder, &control).await;
    holder.outcome(control.id).await;
    let held_messages = history(holder, "control:held").await.len();
    let mut held = Vec::new();
    for i in 0..FLOOD_RUNS {
        held.push(hold(holder, &format!("flood:{i}")).await);
    }
    let word = "x".repeat(30_000);
    let message = format!("[[delay:50]] {}", vec![word; 30].join(" "));
    for i in 0..FLOOD_RUNS {
        let frame = json!({
            "id": i + 1,
            "method": "agent.send",
            "params": { "sessionId": format!("flood:{i}"), "message": message },
        });
        ws.send(Message::text(frame.to_string()))
            .await
            .expect("send");
    }
    let barrier = json!({
        "id": 0,
        "method": "sessions.get",
        "params": { "sessionId": "control:held", "historyLimit": 1 },
    });
    ws.send(Message::text(barrier.to_string()))
        .await
        .expect("send");
    loop {
        let frame = match tokio::time::timeout(LIVENESS, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no answer to the barrier on the slow connection: {other:?}"),
        };
        let frame: serde_json::Value = serde_json::from_str(frame.as_str()).expect("JSON");
        if frame["id"] == json!(0) && frame.get("event").is_none() {
            break;
        }
    }
    for h in &held {
        release(holder, h).await;
    }
    held_messages + 2
}

/// Waits (watching from another connection) until every flood run has stored its answer:
/// by then every event of the flood has been emitted, so the gateway has either queued or
/// dropped it.
async fn wait_for_flood_runs(other: &mut Ws, messages: usize) {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let list = other
            .call(
                "sessions.list",
                json!({ "frontend": "flood", "includePersisted": true }),
            )
            .await;
        let done = list["result"]["sessions"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["messageCount"] == messages).count())
            .unwrap_or(0);
        if done == FLOOD_RUNS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the flood runs did not all finish within {LIVENESS:?}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_1008() {
    let gw = TestGateway::start(SLOW_CONFIG_PATIENT).await;
    let mut slow = tiny_buffer_client(&gw).await;
    let mut other = gw.client().await;
    let mut holder = Conn::connect(&gw, "holder").await;
    let messages = flood(&mut slow, &mut holder).await;
    // The client does not read until every run is over; another connection is served
    // meanwhile.
    wait_for_flood_runs(&mut other, messages).await;

    // Now read: whatever frames were written before the overflow, then close 1008. The close
    // frame waits behind them for `close_delivery_timeout_ms` (ten minutes here), so when this
    // read starts does not matter.
    let mut frames = 0usize;
    let close = loop {
        match tokio::time::timeout(LIVENESS, slow.next())
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
        frames < FLOOD_RUNS * FLOOD_FRAMES_PER_RUN,
        "the server dropped the consumer instead of sending everything: {frames} frames"
    );
    let info = other.call("system.info", json!({})).await;
    assert!(
        info["result"]["version"].is_string(),
        "other connections unaffected: {info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_released() {
    // The gateway must not keep a connection (and its task) forever because the peer stopped
    // reading: once its buffer has overflowed, the close handshake is bounded
    // (`close_delivery_timeout_ms`, 3 s by default, to send the close frame, 2 s for the answer)
    // and the connection is dropped. The client never reads
    // and is only dropped at the end, so a gateway without that bound holds it for as long as
    // the test runs: the generous deadline only says how long to wait for the release.
    let gw = TestGateway::start(SLOW_CONFIG).await;
    let mut slow = tiny_buffer_client(&gw).await;
    let mut other = gw.client().await;
    let mut holder = Conn::connect(&gw, "holder").await;
    let messages = flood(&mut slow, &mut holder).await;
    holder.close().await;
    wait_for_flood_runs(&mut other, messages).await;
    let deadline = Instant::now() + LIVENESS;
    loop {
        let info = other.call("system.info", json!({})).await;
        let connections = info["result"]["connections"].clone();
        if connections == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a connection that never reads is still held {LIVENESS:?} after its runs ended ({connections} open)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(slow);
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let gw = TestGateway::start("ping_interval_ms = 200").await;
    let mut ws = gw.client().await;
    // Reading is what makes tungstenite answer pings. Two unanswered pings close a connection,
    // so six pings in a row without a close show the answers counted (counted, not timed: a
    // loaded machine only makes the pings later).
    for pings in 0..6 {
        match tokio::time::timeout(LIVENESS, ws.stream.next()).await {
            Err(_) => panic!("no ping within {LIVENESS:?} after {pings} pings"),
            Ok(Some(Ok(Message::Ping(_)))) => {}
            Ok(Some(Ok(Message::Close(frame)))) => {
                panic!("closed after {pings} pings although pongs were sent: {frame:?}")
            }
            Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            Ok(Some(Err(e))) => panic!("connection broke: {e}"),
            Ok(None) => panic!("connection ended although pongs were sent"),
        }
    }
    let info = ws.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}

/// Frames that arrive in the same packet as the upgrade request are read by hyper along with
/// it; the gateway must hand them on to the WebSocket, not drop them.
#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_answered() {
    let gw = TestGateway::start("").await;
    let mut early = masked_text_frame(r#"{"id":1,"method":"system.info"}"#);
    early.extend(masked_text_frame(r#"{"id":2,"method":"system.info"}"#));
    let mut raw = raw_upgrade_sending(gw.addr, &early).await;
    for id in [1, 2] {
        let frame = tokio::time::timeout(LIVENESS, read_raw_frame(&mut raw))
            .await
            .expect("a reply within the liveness bound")
            .expect("a frame before the connection closes");
        assert_eq!(frame.opcode, 0x1, "a text frame: {frame:?}");
        let reply: serde_json::Value = serde_json::from_slice(&frame.payload).expect("JSON reply");
        assert_eq!(reply["id"], json!(id), "{reply}");
        assert!(reply["result"]["version"].is_string(), "{reply}");
    }
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_after_two_missed_pongs() {
    let gw = TestGateway::start("ping_interval_ms = 200").await;
    // Taken before the upgrade request: the server's ping timer cannot start earlier, so the
    // time to the close is at least its three intervals whatever the load.
    let start = Instant::now();
    let mut raw = raw_upgrade(gw.addr).await;
    let mut pings = 0;
    let close = loop {
        let frame = tokio::time::timeout(LIVENESS, read_raw_frame(&mut raw))
            .await
            .unwrap_or_else(|_| panic!("no frame within {LIVENESS:?} after {pings} pings"))
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
    // Only a lower bound: pings at 200 and 400 ms, the close at the third tick (600 ms); the
    // count above says it was the missed pongs, not something else, that closed it.
    assert!(
        elapsed >= Duration::from_millis(600),
        "closed before the third ping interval (600 ms): {elapsed:?}"
    );
    // The answering client next to it is unaffected.
    let mut ws: Ws = gw.client().await;
    let info = ws.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}
