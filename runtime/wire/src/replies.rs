//! Replies: what a handler returns ([`Reply`]), what the dispatcher makes of it
//! ([`Dispatched`]), and the result and error frames.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::error::RpcError;
use crate::ids::RequestId;
use crate::json_text::{FrameStart, IdText};

/// The whole result frame of a request, `{"jsonrpc":"2.0","id":…,"result":…}` (`jsonrpc`
/// only when the request had it), byte for byte what serde_json writes for a struct of those
/// members. Only the result goes through serde_json; the envelope is written by hand around
/// it: through serde, its two member names were escaped byte by byte and its id went through
/// an untagged enum, about 5 % of a `system.info` request (BENCHMARKS.md, finding 35). The
/// result is written into a buffer kept between replies (no allocation, no regrowth: most
/// results outgrow serde_json's first 128 bytes), then copied into a frame that fills its
/// allocation exactly: the WebSocket layer takes such a `String` as is and allocates a header
/// for any other.
pub fn encode_reply<T: Serialize>(
    id: &RequestId,
    jsonrpc: bool,
    result: &T,
) -> Result<String, RpcError> {
    /// A buffer grown past this by a large result is given back after use.
    const KEEP: usize = 64 * 1024;
    thread_local! {
        static RESULT_TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    RESULT_TEXT.with_borrow_mut(|text| {
        text.clear();
        let frame = serde_json::to_writer(&mut *text, result)
            .map_err(|e| RpcError::internal(format!("could not encode the result: {e}")))
            .and_then(|()| {
                // serde_json writes only UTF-8; the check costs less than the allocations
                // the kept buffer saves.
                std::str::from_utf8(text)
                    .map_err(|e| RpcError::internal(format!("the result is not UTF-8: {e}")))
            })
            .map(|result| frame_around(id, jsonrpc, result));
        if text.capacity() > KEEP {
            *text = Vec::new();
        }
        frame
    })
}

/// `{"jsonrpc":"2.0","id":…,"result":<result>}` at its exact length.
fn frame_around(id: &RequestId, jsonrpc: bool, result: &str) -> String {
    let mut digits = itoa::Buffer::new();
    let start = FrameStart {
        jsonrpc,
        id: IdText::new(id, &mut digits),
    };
    let len = start.len() + r#","result":}"#.len() + result.len();
    let mut frame = String::with_capacity(len);
    start.push_to(&mut frame);
    frame.push_str(r#","result":"#);
    frame.push_str(result);
    frame.push('}');
    debug_assert_eq!(frame.len(), len, "the reply's length was worked out wrong");
    frame
}

/// What a handler returns: its result at once, for methods that answer from memory, or a
/// future, for methods that wait (storage, a model, a process). Like jsonrpsee's sync and async
/// methods: a ready result costs the dispatcher no allocation and no future.
pub enum Reply<'a, T> {
    Ready(Result<T, RpcError>),
    Later(Pin<Box<dyn Future<Output = Result<T, RpcError>> + Send + 'a>>),
}

impl<'a, T> Reply<'a, T> {
    /// The result, available now.
    pub fn ready(result: Result<T, RpcError>) -> Self {
        Self::Ready(result)
    }

    /// Work that completes later.
    pub fn later(future: impl Future<Output = Result<T, RpcError>> + Send + 'a) -> Self {
        Self::Later(Box::pin(future))
    }
}

/// A started request's reply frame, still to come.
pub type ReplyFuture<'a> = Pin<Box<dyn Future<Output = Result<String, RpcError>> + Send + 'a>>;

/// What `crate::dispatch` made of a request: the whole reply frame (or the error to answer
/// with) at once, or a future for it.
pub enum Dispatched<'a> {
    Ready(Result<String, RpcError>),
    Later(ReplyFuture<'a>),
}

/// Turns a handler's reply into the reply frame, the result serialized once, straight into it.
pub fn finish<'a, T: Serialize + 'a>(
    reply: Reply<'a, T>,
    id: RequestId,
    jsonrpc: bool,
) -> Dispatched<'a> {
    match reply {
        Reply::Ready(result) => {
            Dispatched::Ready(result.and_then(|r| encode_reply(&id, jsonrpc, &r)))
        }
        Reply::Later(future) => Dispatched::Later(Box::pin(async move {
            encode_reply(&id, jsonrpc, &future.await?)
        })),
    }
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    id: Option<&'a RequestId>,
    error: &'a RpcError,
}

pub(crate) fn version(jsonrpc: bool) -> Option<&'static str> {
    jsonrpc.then_some("2.0")
}

// These three serialize only strings, integers and already-valid JSON, which cannot fail; the
// fallback keeps the promise of a reply anyway.
pub(crate) fn to_json<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_else(|e| {
        format!(r#"{{"id":null,"error":{{"code":5,"message":"could not encode a reply: {e}"}}}}"#)
    })
}

/// `{"id":…,"error":{code,message,data?}}`; `id` is `null` when the request's id was unreadable.
pub fn error_reply(id: Option<&RequestId>, jsonrpc: bool, error: &RpcError) -> String {
    to_json(&ErrorReply {
        jsonrpc: version(jsonrpc),
        id,
        error,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The reply as serde_json wrote it before the envelope was written by hand: every reply
    /// must stay byte for byte the same.
    #[derive(Serialize)]
    struct Reference<'a, T> {
        #[serde(skip_serializing_if = "Option::is_none")]
        jsonrpc: Option<&'static str>,
        id: &'a RequestId,
        result: &'a T,
    }

    #[test]
    fn replies_are_byte_for_byte_those_serde_json_wrote() {
        let ids = [
            RequestId::Number(0),
            RequestId::Number(-7),
            RequestId::Number(i64::MIN),
            RequestId::Number(i64::MAX),
            RequestId::String(String::new()),
            RequestId::String("a \"quoted\" id\n\u{1f}".into()),
            RequestId::String("ünïcödé".into()),
        ];
        let results = [
            json!(null),
            json!(true),
            json!(1.5),
            json!("text with \"quotes\" and \\"),
            json!([1, "two", {"three": 3}]),
            json!({"b": 1, "a": {"nested": [null, false]}, "\u{7}": "\u{2028}"}),
        ];
        for id in &ids {
            for result in &results {
                for jsonrpc in [false, true] {
                    let reference = serde_json::to_string(&Reference {
                        jsonrpc: version(jsonrpc),
                        id,
                        result,
                    });
                    let frame = encode_reply(id, jsonrpc, result);
                    assert_eq!(frame.ok(), reference.ok(), "{id} {result} {jsonrpc}");
                }
            }
        }
    }

    #[test]
    fn a_reply_fills_its_allocation_exactly() {
        let frame = encode_reply(&RequestId::Number(42), true, &json!({"version": "1.2.3"}));
        let frame = frame.unwrap_or_default();
        assert_eq!(frame.len(), frame.capacity(), "{frame}");
    }

    #[test]
    fn a_result_that_cannot_be_encoded_is_an_internal_error() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let error = encode_reply(&RequestId::Number(1), false, &map).err();
        assert!(
            error.is_some_and(|e| e.message.contains("could not encode the result")),
            "a map with non-string keys has no JSON text"
        );
    }
}
