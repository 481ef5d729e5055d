//! Support for the agent integration tests (`agent_*` modules): a WebSocket client whose frames
//! are read continuously by a background task and stamped with their arrival time, so a test can
//! wait for any frame of any request on several connections at once and compare when frames
//! arrived across connections, and helpers that hold a run at a known point without sleeping.
//!
//! Imported by each agent test module as `use crate::support::agent as agent_support;`.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{TestGateway, Ws};

/// How long any single wait in these tests may take before the test fails: a liveness bound
/// far above what any load makes a frame take (no test passes or fails by a frame's speed).
pub const WAIT: Duration = Duration::from_secs(60);

/// A frame as received, with its arrival time.
#[derive(Debug, Clone)]
pub struct Frame {
    pub at: Instant,
    /// Arrival position on its connection (0-based).
    pub index: usize,
    pub value: Value,
}

impl Frame {
    pub fn event(&self) -> Option<&str> {
        self.value.get("event").and_then(Value::as_str)
    }

    pub fn is_event(&self, id: i64, name: &str) -> bool {
        self.value["id"] == json!(id) && self.event() == Some(name)
    }

    pub fn is_reply(&self, id: i64) -> bool {
        self.value["id"] == json!(id) && self.value.get("event").is_none()
    }

    pub fn data(&self) -> &Value {
        &self.value["data"]
    }

    pub fn seq(&self) -> u64 {
        self.value["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("event without a numeric seq: {}", self.value))
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

struct Log {
    frames: Mutex<Vec<Frame>>,
    closed: Mutex<bool>,
}

/// A WebSocket client whose frames are read by a background task into a time-stamped log.
pub struct Conn {
    sink: Sink,
    log: Arc<Log>,
    changed: watch::Receiver<usize>,
    next_id: i64,
    reader: tokio::task::JoinHandle<()>,
    /// For messages: which connection this is.
    pub name: String,
}

/// Everything a request produced: its events (in arrival order, including a terminal event that
/// arrived after the reply) and its reply.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: i64,
    pub events: Vec<Frame>,
    pub reply: Frame,
}

impl Outcome {
    pub fn names(&self) -> Vec<&str> {
        self.events.iter().filter_map(Frame::event).collect()
    }

    /// Events named `name`.
    pub fn named(&self, name: &str) -> Vec<&Frame> {
        self.events
            .iter()
            .filter(|f| f.event() == Some(name))
            .collect()
    }

    pub fn first(&self, name: &str) -> Option<&Frame> {
        self.events.iter().find(|f| f.event() == Some(name))
    }

    pub fn result(&self) -> &Value {
        let r = &self.reply.value;
        assert!(
            r.get("result").is_some(),
            "request {} failed: {r}\nevents: {:#?}",
            self.id,
            self.event_values()
        );
        &r["result"]
    }

    pub fn error(&self) -> &Value {
        let r = &self.reply.value;
        assert!(
            r.get("error").is_some(),
            "request {} succeeded but an error was expected: {r}",
            self.id
        );
        &r["error"]
    }

    pub fn content(&self) -> String {
        self.result()["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no content in {}", self.reply.value))
            .to_owned()
    }

    /// The concatenated non-transient `content` deltas.
    pub fn streamed_text(&self) -> String {
        self.named("content")
            .iter()
            .filter(|f| f.data()["transient"] != json!(true))
            .map(|f| f.data()["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// When the first event arrived (the reply's time when there was none).
    pub fn started_at(&self) -> Instant {
        self.events.first().map(|f| f.at).unwrap_or(self.reply.at)
    }

    /// When the terminal event (`done` or `error`) arrived.
    pub fn terminal_at(&self) -> Instant {
        self.events
            .iter()
            .find(|f| matches!(f.event(), Some("done" | "error")))
            .map(|f| f.at)
            .unwrap_or(self.reply.at)
    }

    /// Event values, for assertion messages.
    pub fn event_values(&self) -> Vec<&Value> {
        self.events.iter().map(|f| &f.value).collect()
    }

    /// Events that arrived after the reply (a request's events must all precede its reply).
    pub fn events_after_reply(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|f| f.index > self.reply.index)
            .map(|f| &f.value)
            .collect()
    }
}

impl Conn {
    pub async fn connect(gw: &TestGateway, name: &str) -> Conn {
        let ws: Ws = gw.client().await;
        let (sink, mut stream) = ws.stream.split();
        let log = Arc::new(Log {
            frames: Mutex::new(Vec::new()),
            closed: Mutex::new(false),
        });
        let (tx, changed) = watch::channel(0usize);
        let reader_log = log.clone();
        let reader = tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Text(text)) => {
                        let at = Instant::now();
                        let value: Value =
                            serde_json::from_str(text.as_str()).expect("frame is JSON");
                        let mut frames = reader_log.frames.lock().unwrap();
                        let index = frames.len();
                        frames.push(Frame { at, index, value });
                        drop(frames);
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            *reader_log.closed.lock().unwrap() = true;
            tx.send_modify(|n| *n += 1);
        });
        Conn {
            sink,
            log,
            changed,
            next_id: 1,
            reader,
            name: name.to_owned(),
        }
    }

    /// Sends a request; returns its id.
    pub async fn request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({ "id": id, "method": method, "params": params });
        self.sink
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
        id
    }

    /// Sends `agent.send` with `message` to `session`; returns the request id.
    pub async fn send(&mut self, session: &str, message: &str) -> i64 {
        self.request(
            "agent.send",
            json!({ "sessionId": session, "message": message }),
        )
        .await
    }

    /// Every frame received so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.log.frames.lock().unwrap().clone()
    }

    /// Events of request `id` received so far.
    pub fn events(&self, id: i64) -> Vec<Frame> {
        self.log
            .frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f.value["id"] == json!(id) && f.event().is_some())
            .cloned()
            .collect()
    }

    /// Waits for the first frame (from the start of the log) that `pred` accepts.
    pub async fn wait(&self, what: &str, pred: impl Fn(&Frame) -> bool) -> Frame {
        self.wait_for(WAIT, pred).await.unwrap_or_else(|| {
            panic!(
                "{}: no {what} within {WAIT:?}; frames so far:\n{}",
                self.name,
                self.dump()
            )
        })
    }

    /// Like [`Conn::wait`] with a custom limit; `None` when it passes.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut changed = self.changed.clone();
        // Frames before `checked` were already rejected by `pred`.
        let mut checked = 0;
        loop {
            changed.borrow_and_update();
            {
                let frames = self.log.frames.lock().unwrap();
                if let Some(f) = frames[checked..].iter().find(|f| pred(f)) {
                    return Some(f.clone());
                }
                checked = frames.len();
            }
            if *self.log.closed.lock().unwrap() {
                return None;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    pub async fn reply(&self, id: i64) -> Frame {
        self.wait(&format!("reply to request {id}"), |f| f.is_reply(id))
            .await
    }

    /// The first `name` event of request `id`.
    pub async fn event(&self, id: i64, name: &str) -> Frame {
        self.wait(&format!("`{name}` event of request {id}"), |f| {
            f.is_event(id, name)
        })
        .await
    }

    /// Sends a request and returns its reply's value.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.reply(id).await.value
    }

    /// Sends a request and returns its `result`, failing the test on an error reply.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(v.get("result").is_some(), "{method} failed: {v}");
        v["result"].clone()
    }

    /// Waits for the reply of `id` and, unless the reply is an error without a run (codes other
    /// than 3, 4, 5), for its terminal event (`done` or `error`), wherever it arrives. Fails the
    /// test when any event of the request arrives after its response (the wire rule: a
    /// request's events, ending with `done` or `error`, precede its response).
    pub async fn outcome(&self, id: i64) -> Outcome {
        let reply = self.reply(id).await;
        let code = reply.value["error"]["code"].as_i64();
        let terminal = match code {
            None => Some("done"),
            Some(3..=5) => Some("error"),
            Some(_) => None,
        };
        if let Some(name) = terminal {
            self.wait(
                &format!("`{name}` event of request {id} (before or after its reply)"),
                |f| f.is_event(id, name),
            )
            .await;
        }
        let outcome = Outcome {
            id,
            events: self.events(id),
            reply,
        };
        let late = outcome.events_after_reply();
        assert!(
            late.is_empty(),
            "{}: events of request {id} arrived after its response {}: {:?}",
            self.name,
            outcome.reply.value,
            late.iter()
                .map(|e| (e["event"].clone(), e["seq"].clone()))
                .collect::<Vec<_>>()
        );
        outcome
    }

    /// A round trip through the gateway's store writer (FIFO): once it returns, every
    /// `agent.send` sent earlier on this connection has been handed to its lane, because each
    /// one reads the session's queue policy from the store before it is queued.
    pub async fn barrier(&mut self, session: &str) {
        self.call("sessions.get", json!({ "sessionId": session }))
            .await;
    }

    /// Every frame, one a line, for failure messages.
    pub fn dump(&self) -> String {
        self.frames()
            .iter()
            .map(|f| f.value.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts that the events of this connection carry `seq` 1, 2, 3, ... in arrival order.
    pub fn assert_seq_contiguous(&self) {
        let seqs: Vec<u64> = self
            .frames()
            .iter()
            .filter(|f| f.event().is_some())
            .map(Frame::seq)
            .collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "{}: event seq must increase by 1 per connection",
            self.name
        );
    }

    pub async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A run held at a tool-approval request: deterministic "a run is active" without sleeping.
pub struct Held {
    pub id: i64,
    pub approval_id: String,
    pub approval: Frame,
}

/// Message whose run asks for one `shell.exec` call (used to hold runs at approval).
pub const HOLD_MESSAGE: &str = r#"hold [[tool:shell.exec {"command":"echo held"}]]"#;

/// Turns approval on for `session` from `conn`, sends a tool-calling message and waits until the
/// run asks for approval: the run is then active, and stays so until [`release`].
pub async fn hold(conn: &mut Conn, session: &str) -> Held {
    hold_with(conn, session, HOLD_MESSAGE).await
}

pub async fn hold_with(conn: &mut Conn, session: &str, message: &str) -> Held {
    let on = conn
        .ok(
            "agent.setToolUseCallback",
            json!({ "sessionId": session, "enabled": true }),
        )
        .await;
    assert_eq!(on["success"], json!(true));
    let id = conn.send(session, message).await;
    let approval = conn.event(id, "tool_approval").await;
    let approval_id = approval.data()["approvalId"]
        .as_str()
        .expect("approvalId")
        .to_owned();
    Held {
        id,
        approval_id,
        approval,
    }
}

/// Approves the held tool call, letting the run go on.
pub async fn release(conn: &mut Conn, held: &Held) {
    let r = conn
        .ok(
            "agent.approveTool",
            json!({ "approvalId": held.approval_id, "approved": true }),
        )
        .await;
    assert_eq!(
        r["accepted"],
        json!(true),
        "the held approval must still be pending"
    );
}

/// The `error.data.queue` object of an outcome whose reply is an error.
pub fn reply_queue(o: &Outcome) -> Value {
    o.error()["data"]["queue"].clone()
}

/// The `data.queue` object of an outcome's `error` event.
pub fn event_queue(o: &Outcome) -> Value {
    o.first("error")
        .unwrap_or_else(|| {
            panic!(
                "request {} has no error event: {:?}",
                o.id,
                o.event_values()
            )
        })
        .data()["queue"]
        .clone()
}

/// The code of an outcome's `error` event.
pub fn event_code(o: &Outcome) -> i64 {
    o.first("error")
        .unwrap_or_else(|| {
            panic!(
                "request {} has no error event: {:?}",
                o.id,
                o.event_values()
            )
        })
        .data()["code"]
        .as_i64()
        .expect("numeric error event code")
}

/// Audit entries of `kind` in the running gateway's store, newest first, as
/// (session id, detail JSON).
pub async fn audit_entries(gw: &TestGateway, kind: &str) -> Vec<(Option<String>, Value)> {
    let store = &gw.running.as_ref().expect("gateway running").gateway.store;
    store
        .audit_entries(Some(kind), 100)
        .await
        .expect("read the audit log")
        .into_iter()
        .map(|e| {
            (
                e.session_id,
                serde_json::from_str(&e.detail).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The content of a memory namespace in the running gateway's store.
pub async fn memory(gw: &TestGateway, namespace: &str) -> Option<String> {
    let store = &gw.running.as_ref().expect("gateway running").gateway.store;
    store
        .memory(namespace)
        .await
        .expect("read memory")
        .map(|m| m.content)
}

/// Polls `check` every 10 ms until it holds or `limit` passes (for conditions no event
/// announces, such as a process disappearing). Returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The history of a session as (role, content) pairs, from `sessions.get`.
pub async fn history(conn: &mut Conn, session: &str) -> Vec<(String, String)> {
    let r = conn
        .ok("sessions.get", json!({ "sessionId": session }))
        .await;
    r["history"]
        .as_array()
        .unwrap_or_else(|| panic!("sessions.get without history: {r}"))
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
