//! Replies: what a handler returns ([`Reply`]), what the dispatcher makes of it
//! ([`Dispatched`]), and the result and error frames.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::error::RpcError;
use crate::ids::RequestId;

#[derive(Serialize)]
struct ResultReply<'a, T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    id: &'a RequestId,
    result: &'a T,
}

/// The whole result frame of a request, serializing `result` once, straight into it.
pub fn encode_reply<T: Serialize>(
    id: &RequestId,
    jsonrpc: bool,
    result: &T,
) -> Result<String, RpcError> {
    // `to_string`, not `to_writer` into a `Vec` and `String::from_utf8`: checking the frame's
    // UTF-8 again cost about 2 % of a `system.info` request's instructions (BENCHMARKS.md,
    // finding 24), and serde_json's own `to_string` skips that check soundly.
    serde_json::to_string(&ResultReply {
        jsonrpc: version(jsonrpc),
        id,
        result,
    })
    .map_err(|e| RpcError::internal(format!("could not encode the result: {e}")))
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
