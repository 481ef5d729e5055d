//! Events: where a handler's events go ([`EventSink`]), the emitter tied to one request, and the
//! event frames written to the connection.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::ids::RequestId;
use crate::protocol::{ERROR_EVENT, codes};
use crate::replies::{to_json, version};

/// Where a handler's events go: the connection that sent the request. The sink assigns `seq`.
pub trait EventSink: Send + Sync {
    /// `jsonrpc`: the request carried `"jsonrpc": "2.0"`, so its events carry it too.
    fn send_event(&self, id: &RequestId, jsonrpc: bool, event: &'static str, data: Value);

    /// Sends an event of an agent turn, tagged with the turn's `runId` and `runSeq`. Sinks that
    /// do not write frames ignore the tag.
    fn send_run_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: Value,
        run: RunTag,
    ) {
        let _ = run;
        self.send_event(id, jsonrpc, event, data);
    }
}

/// The frame members that tie an event to its turn (decision resumable-runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTag {
    pub run_id: Arc<str>,
    /// Per-turn event counter from 1.
    pub run_seq: u64,
}

/// Emits events tied to one request. Typed emitters (`content`, `done`, ...) are generated.
#[derive(Clone)]
pub struct EventEmitter {
    id: RequestId,
    jsonrpc: bool,
    sink: Arc<dyn EventSink>,
}

impl fmt::Debug for EventEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventEmitter")
            .field("id", &self.id)
            .finish()
    }
}

impl EventEmitter {
    pub fn new(id: RequestId, sink: Arc<dyn EventSink>) -> Self {
        Self {
            id,
            jsonrpc: false,
            sink,
        }
    }

    /// Marks the request as JSON-RPC 2.0: its events echo `"jsonrpc": "2.0"`.
    pub fn with_jsonrpc(mut self, jsonrpc: bool) -> Self {
        self.jsonrpc = jsonrpc;
        self
    }

    pub fn request_id(&self) -> &RequestId {
        &self.id
    }

    /// The request carried `"jsonrpc": "2.0"`.
    pub fn jsonrpc(&self) -> bool {
        self.jsonrpc
    }

    /// Sends an already encoded event of an agent turn with its `runId` / `runSeq`.
    pub fn emit_in_run(&self, event: &'static str, data: Value, run: RunTag) {
        self.sink
            .send_run_event(&self.id, self.jsonrpc, event, data, run);
    }

    /// Sends `event` with `data`. Event data types are plain serde structs whose serialization
    /// cannot fail; should it ever, the event is replaced by an `error` event saying so rather
    /// than being dropped silently.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &'static str, data: &T) {
        match serde_json::to_value(data) {
            Ok(value) => self.sink.send_event(&self.id, self.jsonrpc, event, value),
            Err(e) => self.sink.send_event(
                &self.id,
                self.jsonrpc,
                ERROR_EVENT,
                serde_json::json!({
                    "code": codes::INTERNAL_ERROR,
                    "message": format!("could not encode `{event}` event: {e}"),
                }),
            ),
        }
    }
}

#[derive(Serialize)]
struct EventFrameOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    id: &'a RequestId,
    event: &'a str,
    data: &'a Value,
    seq: u64,
    #[serde(rename = "runId", skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    #[serde(rename = "runSeq", skip_serializing_if = "Option::is_none")]
    run_seq: Option<u64>,
}

/// `{"id":…,"event":…,"data":…,"seq":…}`.
pub fn event_frame(id: &RequestId, jsonrpc: bool, event: &str, data: &Value, seq: u64) -> String {
    to_json(&EventFrameOut {
        jsonrpc: version(jsonrpc),
        id,
        event,
        data,
        seq,
        run_id: None,
        run_seq: None,
    })
}

/// An event frame of an agent turn: `runId` and `runSeq` beside `seq` (decision resumable-runs).
pub fn run_event_frame(
    id: &RequestId,
    jsonrpc: bool,
    event: &str,
    data: &Value,
    seq: u64,
    run: &RunTag,
) -> String {
    to_json(&EventFrameOut {
        jsonrpc: version(jsonrpc),
        id,
        event,
        data,
        seq,
        run_id: Some(&run.run_id),
        run_seq: Some(run.run_seq),
    })
}
