//! Connections cut at random points of a turn (decision resumable-runs): a TCP proxy between
//! the client and the real gateway forwards the gateway's bytes up to a random budget, then
//! drops both sides. The client resumes the way the clients do: with the turn's `runId`
//! known, `agent.attach` after the last `runSeq` it saw; without it, the same `agent.send`
//! again (same `idempotencyKey`). Every turn must end with the concatenated `content` equal to
//! the final reply, no `runSeq` seen twice, and exactly one stored turn per key.
//!
//! The cut points come from a seeded generator; the seed is printed (set `CUT_SEED` to replay
//! a run). Nothing depends on timing: the turn's pace only decides where the cuts land.

use crate::support;
use crate::support::sid;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const TURNS: usize = 25;
const FRAME_WAIT: Duration = Duration::from_secs(20);

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Forwards connections to `upstream`; the gateway-to-client direction of the next
/// connection carries at most the budget set by [`Proxy::cut_after`] (`None`: no cut).
struct Proxy {
    addr: SocketAddr,
    budget: Arc<Mutex<Option<usize>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let budget: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));
        let shared = budget.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Successive connections under one budget get different cut points, so a
                // reconnect never meets the same cut forever.
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let limit = shared.lock().unwrap().map(|b| b + (n * 397) % 1500);
                tokio::spawn(pipe(client, upstream, limit));
            }
        });
        Proxy {
            addr,
            budget,
            accepted,
        }
    }

    fn cut_after(&self, bytes: Option<usize>) {
        *self.budget.lock().unwrap() = bytes;
    }
}

async fn pipe(client: TcpStream, upstream: SocketAddr, limit: Option<usize>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    });
    let mut left = limit.unwrap_or(usize::MAX);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = n.min(left);
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        left -= n;
        if left == 0 {
            break;
        }
    }
    // The cut: both directions end, the gateway sees its client vanish.
    up.abort();
    let _ = cw.shutdown().await;
}

/// What the client learnt of its turn so far.
#[derive(Default)]
struct Seen {
    run_id: Option<String>,
    last_seq: u64,
    seqs: BTreeSet<u64>,
    content: String,
}

enum Step {
    /// The reply came: the final content.
    Done(Value),
    /// The connection was cut first.
    Cut,
}

/// Sends `frame` on a fresh connection through the proxy and reads until its reply or a cut.
async fn exchange(proxy: SocketAddr, gateway_url: &str, frame: &Value, seen: &mut Seen) -> Step {
    // The request names the gateway (its Host check), the socket goes through the proxy.
    let connect = async {
        let tcp = TcpStream::connect(proxy).await.ok()?;
        tokio_tungstenite::client_async(gateway_url, tcp).await.ok()
    };
    let Ok(Some((mut ws, _))) = tokio::time::timeout(FRAME_WAIT, connect).await else {
        return Step::Cut;
    };
    if ws.send(Message::text(frame.to_string())).await.is_err() {
        return Step::Cut;
    }
    loop {
        let message = match tokio::time::timeout(FRAME_WAIT, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(_) => return Step::Cut,
            Err(_) => panic!("no frame for {FRAME_WAIT:?} on a live connection"),
        };
        let Message::Text(text) = message else {
            continue;
        };
        let v: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
        if v.get("event").is_none() {
            let _ = ws.close(None).await;
            return Step::Done(v);
        }
        let Some(seq) = v["runSeq"].as_u64() else {
            // A replayed reply's `done` (no runSeq): the reply follows.
            continue;
        };
        let run = v["runId"]
            .as_str()
            .expect("runSeq comes with runId")
            .to_owned();
        if let Some(known) = &seen.run_id {
            assert_eq!(known, &run, "events of another turn: {v}");
        }
        seen.run_id = Some(run);
        assert!(seen.seqs.insert(seq), "runSeq {seq} seen twice: {v}");
        assert_eq!(
            seq,
            seen.last_seq + 1,
            "events out of order or missing: {v}"
        );
        seen.last_seq = seq;
        if v["event"] == json!("content") && v["data"]["transient"] != json!(true) {
            seen.content
                .push_str(v["data"]["text"].as_str().unwrap_or_default());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_survive_connections_cut_at_random_points() {
    let gw = TestGateway::start("").await;
    let upstream: SocketAddr = gw
        .url()
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("gateway address");
    let proxy = Proxy::start(upstream).await;
    let seed = std::env::var("CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("CUT_SEED={seed}");
    let mut rng = Rng(seed);
    let session = "ws:resume-cut";
    let mut cuts = 0;

    for turn in 0..TURNS {
        let message = format!(
            "turn {turn}: one two three four five six seven eight nine ten eleven twelve [[delay:2]]"
        );
        let key = format!("cut-key-{turn}");
        let send = json!({ "id": 1, "method": "agent.send", "params": {
            "sessionId": session, "message": message, "idempotencyKey": key } });
        let mut seen = Seen::default();
        let mut attempts = 0;
        let reply = loop {
            attempts += 1;
            assert!(attempts < 200, "turn {turn} never completed");
            // Most attempts are cut somewhere in the first 1200 bytes (the handshake and the turn); every fourth runs clean
            // so that each turn ends.
            let budget = (attempts % 4 != 0).then(|| rng.below(1200) as usize);
            proxy.cut_after(budget);
            let frame = match &seen.run_id {
                Some(run) => json!({ "id": 2, "method": "agent.attach", "params": {
                    "sessionId": session, "runId": run, "afterSeq": seen.last_seq } }),
                None => send.clone(),
            };
            match exchange(proxy.addr, &gw.url(), &frame, &mut seen).await {
                Step::Done(v) => break v,
                Step::Cut => cuts += 1,
            }
        };
        let result = reply
            .get("result")
            .unwrap_or_else(|| panic!("turn {turn} failed: {reply}"));
        let content = result["content"].as_str().expect("content").to_owned();
        if result["replayed"] == json!(true) && seen.last_seq == 0 {
            // Cut before any event, reply stored: the kept events are still there.
            let run = result["runId"].as_str().expect("runId").to_owned();
            seen.run_id = Some(run.clone());
            proxy.cut_after(None);
            let attach = json!({ "id": 3, "method": "agent.attach", "params": {
                "sessionId": session, "runId": run, "afterSeq": 0 } });
            let Step::Done(again) = exchange(proxy.addr, &gw.url(), &attach, &mut seen).await
            else {
                panic!("an uncut connection was cut");
            };
            assert_eq!(again["result"]["content"], json!(content));
        }
        assert_eq!(seen.content, content, "turn {turn} (seed {seed})");
        assert_eq!(
            seen.seqs.len() as u64,
            seen.last_seq,
            "every event once (seed {seed})"
        );
    }

    // Exactly one stored turn per key.
    let mut ws = gw.client().await;
    let history = ws
        .call(
            "sessions.get",
            json!({ "sessionId": session, "historyLimit": 1000 }),
        )
        .await;
    let messages = history["result"]["history"]
        .as_array()
        .expect("history")
        .clone();
    for turn in 0..TURNS {
        let prefix = format!("turn {turn}:");
        let users = messages
            .iter()
            .filter(|m| m["role"] == json!("user"))
            .filter(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(&prefix))
            })
            .count();
        assert_eq!(users, 1, "turn {turn} stored {users} times (seed {seed})");
    }
    let assistants = messages
        .iter()
        .filter(|m| m["role"] == json!("assistant"))
        .count();
    assert_eq!(assistants, TURNS, "one answer per turn (seed {seed})");
    println!("{TURNS} turns, {cuts} cut connections");
}

/// The generated Rust client over [`flynn_protocol::ws_client::ResumingWsTransport`], through a
/// proxy that cuts every connection at a random byte: its streams resume by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_resumes_its_streams_by_itself() {
    use flynn_protocol::types::AgentSendParams;
    use flynn_protocol::{Client, Event};

    let gw = TestGateway::start("").await;
    let upstream: SocketAddr = gw
        .url()
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("gateway address");
    let proxy = Proxy::start(upstream).await;
    let seed = std::env::var("CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("CUT_SEED={seed}");
    let mut rng = Rng(seed);
    // Every connection is cut somewhere in its first 3 kB; the proxy takes one budget per
    // connection, so the first connection (opened below) is cut too.
    proxy.cut_after(Some(400 + rng.below(2600) as usize));
    let url = format!("ws://{}/", proxy.addr);
    let mut tries = 0;
    let transport = loop {
        tries += 1;
        assert!(tries < 100, "could not connect through the proxy");
        if let Ok(t) = flynn_protocol::ws_client::ResumingWsTransport::connect(
            &url,
            // The request names the gateway (its Host check), the socket goes to the proxy.
            flynn_protocol::ws_client::ConnectOptions {
                headers: vec![("host".to_owned(), upstream.to_string())],
                ..Default::default()
            },
        )
        .await
        {
            break t;
        }
    };
    let client = Client::new(transport);
    let session = "ws:resume-rust-client";
    let turns = 10;
    for turn in 0..turns {
        let message =
            format!("turn {turn}: one two three four five six seven eight nine ten [[delay:2]]");
        // The next connections get fresh random budgets.
        proxy.cut_after(Some(400 + rng.below(2600) as usize));
        let mut call = client
            .agent_send_streaming(AgentSendParams {
                attachments: Vec::new(),
                idempotency_key: None,
                message,
                session: None,
                session_id: Some(sid(session)),
            })
            .await
            .expect("the send starts");
        let mut text = String::new();
        while let Some(event) = call.next_event().await {
            if let (Event::Content(c), _) = event.expect("events decode")
                && c.transient != Some(true)
            {
                text.push_str(&c.text);
            }
        }
        let result = call.finish().await.expect("the turn ends");
        assert_eq!(text, result.content, "turn {turn} (seed {seed})");
    }

    let connections = proxy.accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(connections > 1, "the connection was never cut");
    println!("{turns} turns over {connections} connections");

    let mut ws = gw.client().await;
    let history = ws
        .call(
            "sessions.get",
            json!({ "sessionId": session, "historyLimit": 1000 }),
        )
        .await;
    let messages = history["result"]["history"]
        .as_array()
        .expect("history")
        .clone();
    for turn in 0..turns {
        let prefix = format!("turn {turn}:");
        let users = messages
            .iter()
            .filter(|m| m["role"] == json!("user"))
            .filter(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(&prefix))
            })
            .count();
        assert_eq!(users, 1, "turn {turn} stored {users} times (seed {seed})");
    }
}
