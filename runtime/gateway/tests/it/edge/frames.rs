//! The edge at the frame level: closing handshakes (RFC 6455 close codes), the inbound memory
//! budget shared by large messages, and how requests are read (positional params,
//! notifications, batches, duplicate members). Real daemon, raw sockets.

use super::*;

/// A raw WebSocket: the handshake by hand, then frames as bytes.
struct RawWs {
    stream: TcpStream,
}

impl RawWs {
    async fn connect(gw: &TestGateway) -> Self {
        let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
        let host = format!("127.0.0.1:{}", gw.addr.port());
        stream
            .write_all(upgrade_request(&host, None, "").as_bytes())
            .await
            .expect("write handshake");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(LIVENESS, stream.read(&mut byte))
                .await
                .expect("handshake response")
                .expect("read");
            assert!(n == 1, "connection closed during the handshake");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Self { stream }
    }

    /// Sends one masked frame with the given first byte (FIN, RSV, opcode).
    async fn frame(&mut self, first: u8, payload: &[u8]) {
        let mut out = vec![first];
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.expect("write frame");
    }

    /// Reads server frames until a close frame; returns its code (None when the TCP connection
    /// ended without one).
    async fn close_code(&mut self) -> Option<u16> {
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(LIVENESS, async {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                }
                if find_close(&bytes).is_some() {
                    return;
                }
            }
        })
        .await;
        find_close(&bytes)
    }
}

/// The code of the first close frame in a run of unmasked server frames.
fn find_close(bytes: &[u8]) -> Option<u16> {
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let opcode = bytes[at] & 0x0f;
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 if at + 4 <= bytes.len() => (
                u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                4,
            ),
            127 if at + 10 <= bytes.len() => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[at + 2..at + 10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        let start = at + header;
        if start + len > bytes.len() {
            return None;
        }
        if opcode == 0x8 && len >= 2 {
            return Some(u16::from_be_bytes([bytes[start], bytes[start + 1]]));
        }
        at = start + len;
    }
    None
}

#[tokio::test]
async fn a_client_close_is_answered() {
    let gw = TestGateway::start("").await;
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e']).await;
    assert_eq!(ws.close_code().await, Some(1000), "the close is echoed");
    assert!(closed_within(&mut ws.stream, LIVENESS).await);
}

#[tokio::test]
async fn protocol_errors_close_with_1002() {
    let gw = TestGateway::start("").await;
    // RSV1 set without an extension.
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0xc1, b"{}").await;
    assert_eq!(ws.close_code().await, Some(1002));
    // A continuation with nothing to continue.
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0x80, b"x").await;
    assert_eq!(ws.close_code().await, Some(1002));
    // A reserved opcode.
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0x83, b"x").await;
    assert_eq!(ws.close_code().await, Some(1002));
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let gw = TestGateway::start("").await;
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0x81, &[b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!(ws.close_code().await, Some(1007));
}

#[tokio::test]
async fn oversize_frames_close_with_1009() {
    let gw = TestGateway::start("max_frame_bytes = 2048").await;
    let mut ws = RawWs::connect(&gw).await;
    ws.frame(0x81, &vec![b' '; 4096]).await;
    assert_eq!(ws.close_code().await, Some(1009));
}

// ---------------------------------------------------------------------------------------------
// Inbound memory

#[tokio::test]
async fn large_messages_share_a_bounded_inbound_budget() {
    // Budget 1.5 MiB, frames up to 1 MiB: one half-sent large frame holds most of it; a second
    // connection's large frame waits, then is closed with 1013; the first one completes.
    let gw = TestGateway::start(
        "max_frame_bytes = 1048576\nmax_inbound_bytes = 1572864\ninbound_wait_timeout_ms = 700\n\
         inbound_free_bytes_per_connection = 16384",
    )
    .await;
    let frame_of = |n: usize| {
        let text = format!(
            "{{\"id\":1,\"method\":\"system.info\",\"params\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(n)
        );
        text.into_bytes()
    };
    let big = frame_of(1_000_000);
    let mask = [0u8; 4];
    let header = |len: usize| {
        let mut h = vec![0x81, 0x80 | 127];
        h.extend_from_slice(&(len as u64).to_be_bytes());
        h.extend_from_slice(&mask);
        h
    };
    let mut first = RawWs::connect(&gw).await;
    first
        .stream
        .write_all(&header(big.len()))
        .await
        .expect("header");
    first
        .stream
        .write_all(&big[..900_000])
        .await
        .expect("first part");
    // The first frame holds the budget before the second connects: everything sent beyond the
    // connection's free 16 KiB is drawn (what is drawn and not yet read stays reserved for the
    // bytes on their way, so the first never waits for budget). The 1,000,000 - 16 KiB the
    // second needs can then never fit in what is left of the 1.5 MiB.
    let drawn = header(big.len()).len() + 900_000 - 16_384;
    wait_for_inbound_bytes(&gw, "the first frame's bytes drawn", |b| b >= drawn).await;

    let mut second = RawWs::connect(&gw).await;
    second
        .stream
        .write_all(&header(big.len()))
        .await
        .expect("header");
    // The second sender is pushed back; write what fits, in the background.
    let second_body = big.clone();
    let (mut second_read, mut second_write) = second.stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = second_write.write_all(&second_body).await;
    });
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(LIVENESS, async {
        let mut buf = [0u8; 4096];
        loop {
            match second_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
            if find_close(&bytes).is_some() {
                return;
            }
        }
    })
    .await;
    writer.abort();
    assert_eq!(
        find_close(&bytes),
        Some(1013),
        "the second large frame waits, then 1013"
    );

    // The first frame completes and is answered (an unknown param: -2).
    first.stream.write_all(&big[900_000..]).await.expect("rest");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(LIVENESS, async {
        let mut buf = [0u8; 4096];
        loop {
            match first.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&reply).contains("\"error\"") {
                return;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains("pad"),
        "the first frame is answered: {text:?}"
    );
    // Both messages are over (one answered, one refused): the budget is whole again.
    wait_for_inbound_bytes(&gw, "the budget given back", |b| b == 0).await;
    health_ok(&gw).await;
}

/// Polls `flynn_inbound_bytes` on /metrics (the inbound budget held by unfinished messages)
/// until `done` holds. (The gauge is set from this gateway just before each exposition; a
/// scrape of another test's gateway in this process could show its value in between, which
/// here only means one more poll: no other test holds this much.)
async fn wait_for_inbound_bytes(gw: &TestGateway, what: &str, done: impl Fn(usize) -> bool) {
    let deadline = std::time::Instant::now() + LIVENESS;
    loop {
        let metrics = http_get(gw.addr, "/metrics", &[]).await;
        let bytes = metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("flynn_inbound_bytes ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no flynn_inbound_bytes on /metrics: {}", metrics.body));
        if done(bytes) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {LIVENESS:?}; flynn_inbound_bytes is {bytes}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC 2.0 clients, unchanged

#[tokio::test]
async fn empty_positional_params_mean_no_params() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    ws.send_text(r#"{"jsonrpc":"2.0","id":1,"method":"system.info","params":[]}"#)
        .await;
    let reply = ws.next_frame().await.expect("reply");
    assert_eq!(reply["id"], 1);
    assert!(reply["result"]["version"].is_string(), "{reply}");
    // Non-empty positional params are still refused, naming the member.
    ws.send_text(r#"{"jsonrpc":"2.0","id":2,"method":"system.info","params":[1]}"#)
        .await;
    let reply = ws.next_frame().await.expect("reply");
    assert_eq!(reply["error"]["code"], -2, "{reply}");
}

#[tokio::test]
async fn notifications_run_and_nothing_is_sent_back() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    // A notification that starts a turn: it runs (the session gets the messages), but neither
    // its events nor its reply are sent.
    ws.send_text(
        r#"{"jsonrpc":"2.0","method":"agent.send","params":{"sessionId":"edge:note","message":"hi"}}"#,
    )
    .await;
    // Notifications that cannot run are not answered either.
    ws.send_text(r#"{"jsonrpc":"2.0","method":"no.such.method"}"#)
        .await;
    ws.send_text(r#"{"jsonrpc":"2.0","method":"system.info","params":[1]}"#)
        .await;
    // A frame that is not a request object is answered, id null.
    ws.send_text(r#"{"jsonrpc":"2.0","method":7}"#).await;
    let reply = ws.next_frame().await.expect("reply");
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], -2, "{reply}");
    // Wait (generously) for the turn to be stored, then check nothing else ever arrived.
    let deadline = tokio::time::Instant::now() + LIVENESS;
    let mut stored = false;
    while tokio::time::Instant::now() < deadline {
        let id = ws
            .request("sessions.get", json!({ "sessionId": "edge:note" }))
            .await;
        let frame = ws.next_frame().await.expect("frame");
        assert_eq!(frame["id"], id, "only replies to requests arrive: {frame}");
        assert!(frame.get("event").is_none(), "{frame}");
        let count = frame["result"]["history"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if count >= 2 {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stored,
        "the notification's turn was not stored within {LIVENESS:?}"
    );
}

#[tokio::test]
async fn batches_are_answered_with_one_array() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    ws.send_text(
        r#"[{"jsonrpc":"2.0","id":1,"method":"system.info"},
            {"jsonrpc":"2.0","method":"system.info"},
            {"jsonrpc":"2.0","id":2,"method":"nope"},
            {"jsonrpc":"2.0","id":3,"method":"agent.send","params":{"sessionId":"edge:batch","message":"hello"}},
            5]"#,
    )
    .await;
    // The batched turn's events flow as events, before the array.
    let mut events = 0;
    let replies = loop {
        let frame = ws.next_frame().await.expect("frame");
        if frame.is_array() {
            break frame;
        }
        assert_eq!(frame["id"], 3, "only the batched turn's events: {frame}");
        assert!(frame["event"].is_string(), "{frame}");
        events += 1;
    };
    assert!(events >= 2, "content and done events before the array");
    let replies = replies.as_array().cloned().unwrap_or_default();
    assert_eq!(
        replies.len(),
        4,
        "no reply for the notification: {replies:?}"
    );
    let by_id = |id: Value| replies.iter().find(|r| r["id"] == id).cloned();
    assert!(by_id(json!(1)).is_some_and(|r| r["result"]["version"].is_string()));
    assert_eq!(
        by_id(json!(2)).map(|r| r["error"]["code"].clone()),
        Some(json!(-3))
    );
    assert!(by_id(json!(3)).is_some_and(|r| r["result"]["content"].is_string()));
    assert_eq!(
        by_id(Value::Null).map(|r| r["error"]["code"].clone()),
        Some(json!(-2))
    );

    // An empty batch is one error; a batch of notifications gets nothing.
    ws.send_text("[]").await;
    let reply = ws.next_frame().await.expect("reply");
    assert_eq!(reply["error"]["code"], -2, "{reply}");
    assert_eq!(reply["id"], Value::Null);
    ws.send_text(r#"[{"jsonrpc":"2.0","method":"system.info"}]"#)
        .await;
    let info = ws.call("system.info", json!({})).await;
    assert!(
        info["result"].is_object(),
        "the next frame is this reply: {info}"
    );
}

#[tokio::test]
async fn duplicate_members_are_refused() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    for (frame, path) in [
        (
            r#"{"id":1,"method":"system.info","method":"sessions.list"}"#,
            "method",
        ),
        (
            r#"{"id":2,"method":"system.info","params":{},"params":{}}"#,
            "params",
        ),
        (r#"{"id":3,"id":4,"method":"system.info"}"#, "id"),
    ] {
        ws.send_text(frame).await;
        let reply = ws.next_frame().await.expect("reply");
        assert_eq!(reply["error"]["code"], -2, "{frame}: {reply}");
        assert_eq!(reply["error"]["data"]["path"], path, "{frame}: {reply}");
    }
}
