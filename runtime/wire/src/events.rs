//! Events: where a handler's events go ([`EventSink`]), the emitter tied to one request, the
//! event's `data` encoded once ([`EventJson`]), and the event frames written to the connection.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::ids::RequestId;
use crate::json_text::{FrameStart, IdText, JsonStr};
use crate::protocol::{ERROR_EVENT, codes};

/// The JSON text of an event's `data` member, encoded once. A streamed event reaches the
/// requester, every follower of its turn and the turn's kept events (`agent.attach`); all of
/// them share this text (a clone is a reference count), and each frame copies it in as is.
#[derive(Clone, PartialEq, Eq)]
pub struct EventJson(Arc<str>);

impl EventJson {
    /// Encodes `data` the way event frames have always carried it: through a
    /// `serde_json::Value`, whose objects (serde_json without `preserve_order`) write their
    /// members in sorted order, whatever the order of the Rust fields.
    pub fn encode<T: Serialize + ?Sized>(data: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::from_value(&serde_json::to_value(data)?))
    }

    /// Encodes `data` in one pass, without the intermediate `Value`: for the hot events (a
    /// turn's `content`), whose members are declared in sorted order at every level, so the
    /// text is the same as [`EventJson::encode`]'s (checked in debug builds).
    pub fn encode_sorted<T: Serialize + ?Sized>(data: &T) -> Result<Self, serde_json::Error> {
        let text = serde_json::to_string(data)?;
        debug_assert_eq!(
            Some(text.as_str()),
            Self::encode(data).ok().as_ref().map(EventJson::as_str),
            "encode_sorted is for types whose members are declared in sorted order"
        );
        Ok(Self(text.into()))
    }

    /// `{"<member>":"<text>"}`, written by hand: the data of a streamed `content` chunk
    /// (`{"text":…}`), the event sent most, as serde_json writes it (a test compares). Built
    /// in a reused buffer, so the shared text is the only allocation.
    pub fn one_string_member(member: &str, text: &str) -> Self {
        /// A buffer kept longer than this is given back after use.
        const KEEP: usize = 64 * 1024;
        thread_local! {
            static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let (member, text) = (JsonStr::new(member), JsonStr::new(text));
        SCRATCH.with_borrow_mut(|out| {
            out.clear();
            out.reserve(member.len() + text.len() + 3);
            out.push('{');
            member.push_to(out);
            out.push(':');
            text.push_to(out);
            out.push('}');
            let json = Self(Arc::from(out.as_str()));
            if out.capacity() > KEEP {
                *out = String::new();
            }
            json
        })
    }

    pub fn from_value(data: &Value) -> Self {
        // Writing a `Value` cannot fail (its map keys are strings).
        Self(serde_json::to_string(data).unwrap_or_default().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Bytes of JSON text (what the kept events' byte bounds count).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The data parsed back, for sinks that look into it (tests, inbound turns' observers).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for EventJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a handler's events go: the connection that sent the request. The sink assigns `seq`.
pub trait EventSink: Send + Sync {
    /// `jsonrpc`: the request carried `"jsonrpc": "2.0"`, so its events carry it too.
    fn send_event(&self, id: &RequestId, jsonrpc: bool, event: &'static str, data: EventJson);

    /// Sends an event of an agent turn, tagged with the turn's `runId` and `runSeq`. Sinks that
    /// do not write frames ignore the tag.
    fn send_run_event(
        &self,
        id: &RequestId,
        jsonrpc: bool,
        event: &'static str,
        data: EventJson,
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
    pub fn emit_in_run(&self, event: &'static str, data: EventJson, run: RunTag) {
        self.sink
            .send_run_event(&self.id, self.jsonrpc, event, data, run);
    }

    /// Sends `event` with `data`. Event data types are plain serde structs whose serialization
    /// cannot fail; should it ever, the event is replaced by an `error` event saying so rather
    /// than being dropped silently.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &'static str, data: &T) {
        match EventJson::encode(data) {
            Ok(json) => self.sink.send_event(&self.id, self.jsonrpc, event, json),
            Err(e) => self.sink.send_event(
                &self.id,
                self.jsonrpc,
                ERROR_EVENT,
                EventJson::from_value(&serde_json::json!({
                    "code": codes::INTERNAL_ERROR,
                    "message": format!("could not encode `{event}` event: {e}"),
                })),
            ),
        }
    }
}

/// `{"id":…,"event":…,"data":…,"seq":…}`.
pub fn event_frame(
    id: &RequestId,
    jsonrpc: bool,
    event: &str,
    data: &EventJson,
    seq: u64,
) -> String {
    frame(id, jsonrpc, event, data, seq, None)
}

/// An event frame of an agent turn: `runId` and `runSeq` beside `seq` (decision resumable-runs).
pub fn run_event_frame(
    id: &RequestId,
    jsonrpc: bool,
    event: &str,
    data: &EventJson,
    seq: u64,
    run: &RunTag,
) -> String {
    frame(id, jsonrpc, event, data, seq, Some(run))
}

/// The frame written by hand around the encoded data, in the members' order of every earlier
/// frame (`jsonrpc`, `id`, `event`, `data`, `seq`, `runId`, `runSeq`; compact, as serde_json
/// writes it): the data is copied, never encoded again. Its length is worked out first, so the
/// text fills its allocation exactly: the WebSocket layer takes a `String` whose length is its
/// capacity as is, and allocates a header for any other.
fn frame(
    id: &RequestId,
    jsonrpc: bool,
    event: &str,
    data: &EventJson,
    seq: u64,
    run: Option<&RunTag>,
) -> String {
    let mut id_digits = itoa::Buffer::new();
    let start = FrameStart {
        jsonrpc,
        id: IdText::new(id, &mut id_digits),
    };
    let event = JsonStr::new(event);
    let mut seq_digits = itoa::Buffer::new();
    let seq = seq_digits.format(seq);
    let mut run_seq_digits = itoa::Buffer::new();
    let run = run.map(|r| (JsonStr::new(&r.run_id), run_seq_digits.format(r.run_seq)));
    let len = start.len()
        + r#","event":,"data":,"seq":}"#.len()
        + event.len()
        + data.len()
        + seq.len()
        + run.as_ref().map_or(0, |(run_id, run_seq)| {
            r#","runId":,"runSeq":"#.len() + run_id.len() + run_seq.len()
        });
    let mut out = String::with_capacity(len);
    start.push_to(&mut out);
    out.push_str(r#","event":"#);
    event.push_to(&mut out);
    out.push_str(r#","data":"#);
    out.push_str(data.as_str());
    out.push_str(r#","seq":"#);
    out.push_str(seq);
    if let Some((run_id, run_seq)) = &run {
        out.push_str(r#","runId":"#);
        run_id.push_to(&mut out);
        out.push_str(r#","runSeq":"#);
        out.push_str(run_seq);
    }
    out.push('}');
    debug_assert_eq!(out.len(), len, "the frame's length was worked out wrong");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame as it was written before the data was encoded once: serde_json over a struct
    /// of the members, the data as a `Value`. Every frame must stay byte for byte the same.
    #[derive(Serialize)]
    struct Reference<'a> {
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

    #[derive(Serialize)]
    struct Unsorted {
        zeta: u32,
        alpha: &'static str,
        nested: Vec<NestedUnsorted>,
    }

    #[derive(Serialize)]
    struct NestedUnsorted {
        success: bool,
        error: Option<String>,
    }

    #[test]
    fn frames_are_byte_for_byte_those_serde_json_wrote_over_a_value() {
        let data = Unsorted {
            zeta: 1,
            alpha: "tab\there \"quoted\" \\ é \u{1}",
            nested: vec![NestedUnsorted {
                success: true,
                error: None,
            }],
        };
        let value = serde_json::to_value(&data).unwrap();
        let json = EventJson::encode(&data).unwrap();
        assert_eq!(json.as_str(), value.to_string());
        assert!(json.as_str().starts_with(r#"{"alpha":"#), "{json:?}");
        let ids = [
            RequestId::Number(-7),
            RequestId::Number(i64::MAX),
            RequestId::String("a \"quoted\" id\n".into()),
            RequestId::String(String::new()),
        ];
        let run = RunTag {
            run_id: "run_0123abcd".into(),
            run_seq: u64::MAX,
        };
        for id in &ids {
            for jsonrpc in [false, true] {
                for run in [None, Some(&run)] {
                    let expected = serde_json::to_string(&Reference {
                        jsonrpc: jsonrpc.then_some("2.0"),
                        id,
                        event: "tool_end",
                        data: &value,
                        seq: 42,
                        run_id: run.map(|r| &*r.run_id),
                        run_seq: run.map(|r| r.run_seq),
                    })
                    .unwrap();
                    let written = match run {
                        None => event_frame(id, jsonrpc, "tool_end", &json, 42),
                        Some(run) => run_event_frame(id, jsonrpc, "tool_end", &json, 42, run),
                    };
                    assert_eq!(written, expected);
                }
            }
        }
    }

    #[test]
    fn one_string_member_is_what_serde_json_writes() {
        let long = "a long answer ".repeat(10_000);
        for text in [
            "",
            "plain words ",
            "tab\t \"quoted\" \\ é \u{1}",
            &long,
            "again",
        ] {
            let expected = serde_json::json!({ "text": text }).to_string();
            let json = EventJson::one_string_member("text", text);
            assert_eq!(json.as_str(), expected);
            assert_eq!(
                json,
                EventJson::from_value(&serde_json::json!({ "text": text }))
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "sorted order")]
    fn encoding_in_one_pass_refuses_members_out_of_order_in_debug_builds() {
        let _ = EventJson::encode_sorted(&NestedUnsorted {
            success: true,
            error: None,
        });
    }
}
