//! The wire rules the generated code relies on: request ids, frame parsing with the -1/-2/-3
//! classification, param decoding that names the failing field, reply and event encoding, the
//! per-call context handed to handlers, and the client-side call plumbing.
//!
//! Everything here is hand-written and small; everything per-method is generated.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::{ErrorCode, Event, Method};

mod ids;
mod request;
mod well_formed;

pub use ids::RequestId;
pub use request::Request;

/// A protocol error: `{code, message, data?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The code as an `ErrorCode`, when the spec defines it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }

    /// ScopeRequired (-6): the connection's credential lacks the scope `method` declares.
    pub fn scope_required(method: &str, scope: &str) -> Self {
        Self::new(
            ErrorCode::ScopeRequired,
            format!(
                "`{method}` needs the `{scope}` scope, which this connection's token does not hold; connect with a token that has it (server.tokens scopes)"
            ),
        )
        .with_data(serde_json::json!({ "scope": scope, "method": method }))
    }

    /// ScopeRequired (-6): the connection's credential is limited to other sessions.
    pub fn session_not_allowed(method: &str, param: &str, session_id: &str) -> Self {
        Self::new(
            ErrorCode::ScopeRequired,
            format!(
                "`{method}`: this connection's token may not use session `{session_id}` (params.{param}); its sessions are limited by server.tokens sessions"
            ),
        )
        .with_data(serde_json::json!({ "scope": "chat", "method": method }))
    }

    /// -2 with `data.path` naming the offending field (a JSON path such as `params.limit`).
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        Self::new(ErrorCode::InvalidRequest, message).with_data(serde_json::json!({ "path": path }))
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotFound,
            format!(
                "unknown method `{method}`; rpc.discover lists the methods this gateway serves"
            ),
        )
        .with_data(serde_json::json!({ "method": method }))
    }

    pub fn session_not_found(session_id: &str) -> Self {
        Self::new(
            ErrorCode::SessionNotFound,
            format!(
                "session `{session_id}` does not exist; sessions.list shows the known sessions"
            ),
        )
        .with_data(serde_json::json!({ "sessionId": session_id }))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
}

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
                crate::events::ERROR,
                serde_json::json!({
                    "code": ErrorCode::InternalError.code(),
                    "message": format!("could not encode `{event}` event: {e}"),
                }),
            ),
        }
    }
}

/// What a handler receives with every call.
pub struct Call<C> {
    /// The connection's state.
    pub connection: Arc<C>,
    /// Emits events for this request.
    pub events: EventEmitter,
}

impl<C> Call<C> {
    pub fn new(connection: Arc<C>, events: EventEmitter) -> Self {
        Self { connection, events }
    }

    pub fn id(&self) -> &RequestId {
        self.events.request_id()
    }

    /// The request carried `"jsonrpc": "2.0"` (its reply and events echo it).
    pub fn jsonrpc(&self) -> bool {
        self.events.jsonrpc()
    }
}

/// Decodes by-name params of `method`; absent or `null` params decode as `{}`. The serde types
/// check names, types and required fields; the spec's JSON Schema then checks what the types
/// cannot carry (maximum, minLength, pattern, ...). A failure is -2 with `data.path` naming the
/// field.
pub fn decode_params<T: DeserializeOwned>(
    method: Method,
    raw: Option<&RawValue>,
) -> Result<T, RpcError> {
    let text = match raw {
        Some(raw) if raw.get() != "null" => raw.get(),
        _ => {
            // No params: decode from an empty map without parsing text; a type with required
            // params fails here and gets its precise error from the text path below.
            let empty = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(
                std::iter::empty::<(&str, Value)>(),
            );
            if let Ok(decoded) = T::deserialize(empty) {
                return Ok(decoded);
            }
            "{}"
        }
    };
    let decoded = decode_typed(text)?;
    if text != "{}" {
        check_constraints(method, text)?;
    }
    Ok(decoded)
}

/// The params schema of every method, compiled once from the embedded spec.
fn params_validators() -> &'static std::collections::HashMap<String, jsonschema::Validator> {
    static VALIDATORS: std::sync::OnceLock<
        std::collections::HashMap<String, jsonschema::Validator>,
    > = std::sync::OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let Ok(spec) = serde_json::from_str::<Value>(crate::SPEC_JSON) else {
            return Default::default();
        };
        let mut validators = std::collections::HashMap::new();
        for method in spec["methods"].as_array().into_iter().flatten() {
            let Some(name) = method["name"].as_str() else {
                continue;
            };
            let mut properties = serde_json::Map::new();
            let mut required = Vec::new();
            for p in method["params"].as_array().into_iter().flatten() {
                let Some(pname) = p["name"].as_str() else {
                    continue;
                };
                properties.insert(pname.to_owned(), p["schema"].clone());
                if p["required"].as_bool() == Some(true) {
                    required.push(Value::String(pname.to_owned()));
                }
            }
            // Built exactly like the generator's params objects; refs resolve in `components`.
            let schema = serde_json::json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
                "components": spec["components"],
            });
            if let Ok(validator) = jsonschema::draft7::new(&schema) {
                validators.insert(name.to_owned(), validator);
            }
        }
        validators
    })
}

/// `/attachments/0/mimeType` -> `params.attachments[0].mimeType`.
fn params_path(pointer: &str) -> String {
    let mut path = String::from("params");
    for segment in pointer.split('/').skip(1) {
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    path
}

fn check_constraints(method: Method, text: &str) -> Result<(), RpcError> {
    let Some(validator) = params_validators().get(method.name()) else {
        return Ok(());
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| RpcError::invalid("params", format!("invalid params: {e}")))?;
    match validator.iter_errors(&value).next() {
        None => Ok(()),
        Some(error) => {
            let path = params_path(error.instance_path().as_str());
            Err(RpcError::invalid(
                path.clone(),
                format!("invalid params: {path}: {error}"),
            ))
        }
    }
}

fn decode_typed<T: DeserializeOwned>(text: &str) -> Result<T, RpcError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner().to_string();
        let mut path = err.path().to_string();
        // Missing and unknown fields fail at the object that lacks or has them; name the field.
        // (serde_path_to_error already ends the path of an unknown field with its name.)
        let field = backticked(&inner);
        match (inner.starts_with("missing field"), field) {
            (true, Some(field)) if path != "." => path = format!("{path}.{field}"),
            (_, Some(field)) if path == "." => path = field,
            _ if path == "." => path = String::new(),
            _ => {}
        }
        let path = if path.is_empty() {
            "params".to_owned()
        } else {
            format!("params.{path}")
        };
        let message = format!("invalid params: {path}: {}", strip_position(&inner));
        RpcError::invalid(path, message)
    })
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

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
    // Most replies are short: one allocation of this size usually holds the whole frame.
    let mut frame = Vec::with_capacity(256);
    serde_json::to_writer(
        &mut frame,
        &ResultReply {
            jsonrpc: version(jsonrpc),
            id,
            result,
        },
    )
    .map_err(|e| RpcError::internal(format!("could not encode the result: {e}")))?;
    String::from_utf8(frame)
        .map_err(|e| RpcError::internal(format!("the encoded result is not UTF-8: {e}")))
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

/// A frame that cannot be dispatched, with the reply it gets.
#[derive(Debug)]
pub struct Rejected {
    /// The request id when it could be read, else the reply's id is `null`.
    pub id: Option<RequestId>,
    pub jsonrpc: bool,
    pub error: RpcError,
    /// The frame was a valid notification whose call cannot run (an unknown method, positional
    /// params): JSON-RPC 2.0 sends nothing back. A frame that is not a valid request object at
    /// all is answered (id `null`) even without an id.
    pub silent: bool,
}

impl Rejected {
    pub fn reply(&self) -> String {
        error_reply(self.id.as_ref(), self.jsonrpc, &self.error)
    }
}

/// The members of a request frame, borrowed from the text.
#[derive(Default)]
struct RawFrame<'a> {
    id: Option<&'a RawValue>,
    jsonrpc: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    /// The first member that is not one of the four, if any.
    unknown: Option<String>,
    /// The first of the four that appears twice, if any.
    duplicate: Option<&'static str>,
}

/// Reads a frame's members without building a tree. Anything but an object is refused here:
/// serde would otherwise read `[7, "2.0", "system.info"]` as the struct's fields in order.
fn read_frame(text: &str) -> Result<RawFrame<'_>, RpcError> {
    let members: Vec<(std::borrow::Cow<'_, str>, &RawValue)> =
        match serde_json::from_str::<&RawValue>(text) {
            Err(e) => {
                return Err(RpcError::new(
                    ErrorCode::ParseError,
                    format!("invalid JSON: {e}"),
                ));
            }
            Ok(raw) if !raw.get().starts_with('{') => {
                return Err(RpcError::invalid(
                    "",
                    "a request must be a JSON object {id, method, params?}",
                ));
            }
            Ok(raw) => serde_json::from_str::<MemberList<'_>>(raw.get())
                .map(|m| m.0)
                .map_err(|e| RpcError::new(ErrorCode::ParseError, format!("invalid JSON: {e}")))?,
        };
    let mut frame = RawFrame::default();
    for (name, value) in members {
        let (slot, known) = match name.as_ref() {
            "id" => (&mut frame.id, "id"),
            "jsonrpc" => (&mut frame.jsonrpc, "jsonrpc"),
            "method" => (&mut frame.method, "method"),
            "params" => (&mut frame.params, "params"),
            other => {
                if frame.unknown.is_none() {
                    frame.unknown = Some(other.to_owned());
                }
                continue;
            }
        };
        // Kept first-wins here; the frame is refused when `duplicate` is set.
        match slot {
            Some(_) => {
                if frame.duplicate.is_none() {
                    frame.duplicate = Some(known);
                }
            }
            None => *slot = Some(value),
        }
    }
    Ok(frame)
}

/// An object's members in order, values left raw.
struct MemberList<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for MemberList<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MemberList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(4);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(MemberList(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Parses one text frame: invalid JSON is -1 (id null); a frame that is not an object, has no
/// or a non-string method, a bad id, a bad `jsonrpc` or non-object params is -2 naming the field;
/// an unknown method is -3.
pub fn parse_request(text: &str) -> Result<Request<'_>, Rejected> {
    // One pass for well-formed frames; everything else is classified by the careful path.
    match well_formed::parse(text) {
        Some(request) => Ok(request),
        None => parse_request_slow(text),
    }
}

/// The careful path: reads the members first, then judges them one by one, so each kind of
/// bad frame gets its own code and the member it is about. Public for the test that holds the
/// fast path to it.
#[doc(hidden)]
pub fn parse_request_slow(text: &str) -> Result<Request<'_>, Rejected> {
    let frame = match read_frame(text) {
        Ok(frame) => frame,
        Err(error) => {
            return Err(Rejected {
                id: None,
                jsonrpc: false,
                error,
                silent: false,
            });
        }
    };
    // Read before `jsonrpc` is checked, so a bad `jsonrpc` is still answered to its id.
    let jsonrpc_ok = frame.jsonrpc.map(RawValue::get) == Some("\"2.0\"");
    // An id repeated is no id at all: the reply cannot say which one it answers.
    if frame.duplicate == Some("id") {
        return Err(Rejected {
            id: None,
            jsonrpc: jsonrpc_ok,
            error: duplicate_member("id"),
            silent: false,
        });
    }
    let notification = frame.id.is_none() && jsonrpc_ok;
    let id = match frame
        .id
        .map(|raw| serde_json::from_str::<RequestId>(raw.get()))
    {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return Err(Rejected {
                id: None,
                jsonrpc: jsonrpc_ok,
                error: RpcError::invalid("id", "`id` must be an integer or a string"),
                silent: false,
            });
        }
        None if notification => None,
        None => {
            return Err(Rejected {
                id: None,
                jsonrpc: jsonrpc_ok,
                error: RpcError::invalid(
                    "id",
                    "`id` is required (an integer or a string); with \"jsonrpc\": \"2.0\" a request without one is a notification",
                ),
                silent: false,
            });
        }
    };
    let jsonrpc = match frame.jsonrpc.map(RawValue::get) {
        None => false,
        Some("\"2.0\"") => true,
        Some(other) => {
            return Err(Rejected {
                id,
                jsonrpc: false,
                error: RpcError::invalid(
                    "jsonrpc",
                    format!("`jsonrpc` must be \"2.0\" when present, not {other}"),
                ),
                silent: false,
            });
        }
    };
    // A frame that is not a valid request object is answered even when it has no id (with id
    // null, JSON-RPC 2.0 section 5); a valid notification whose call cannot run is not.
    let malformed = |error: RpcError| Rejected {
        id: id.clone(),
        jsonrpc,
        error,
        silent: false,
    };
    let unservable = |error: RpcError| Rejected {
        id: id.clone(),
        jsonrpc,
        error,
        silent: notification,
    };
    if let Some(name) = frame.duplicate {
        return Err(malformed(duplicate_member(name)));
    }
    if let Some(name) = frame.unknown {
        return Err(malformed(RpcError::invalid(
            name.clone(),
            format!("unknown member `{name}`; a request has only id, method, params and jsonrpc"),
        )));
    }
    let method_name: String = match frame
        .method
        .map(|raw| serde_json::from_str::<String>(raw.get()))
    {
        Some(Ok(name)) => name,
        Some(Err(_)) => {
            return Err(malformed(RpcError::invalid(
                "method",
                "`method` must be a string",
            )));
        }
        None => {
            return Err(malformed(RpcError::invalid(
                "method",
                "`method` is required",
            )));
        }
    };
    let Some(method) = Method::from_name(&method_name) else {
        return Err(unservable(RpcError::method_not_found(&method_name)));
    };
    let params = match frame.params {
        None => None,
        Some(raw) if raw.get() == "null" || is_empty_array(raw.get()) => None,
        Some(raw) if raw.get().starts_with('{') => Some(raw),
        Some(raw) if raw.get().starts_with('[') => {
            return Err(unservable(RpcError::invalid(
                "params",
                "`params` must be an object of named params (by-position arrays are not supported; `[]` means none)",
            )));
        }
        Some(_) => {
            return Err(malformed(RpcError::invalid(
                "params",
                "`params` must be an object of named params (by-position arrays are not supported; `[]` means none)",
            )));
        }
    };
    Ok(Request {
        // A notification's id never reaches the wire.
        id: id.unwrap_or(RequestId::Number(0)),
        jsonrpc,
        method,
        params,
        notification,
    })
}

fn duplicate_member(name: &str) -> RpcError {
    RpcError::invalid(
        name,
        format!("member `{name}` appears more than once; send each member once"),
    )
}

/// `[]`, whitespace allowed inside.
fn is_empty_array(raw: &str) -> bool {
    raw.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inner| inner.trim_matches([' ', '\t', '\n', '\r']).is_empty())
}

/// Most requests in one batch; a larger batch is refused as a whole.
pub const MAX_BATCH_REQUESTS: usize = 100;

/// A text frame that is a JSON array: a JSON-RPC 2.0 batch (section 6). `None` when the frame is
/// not an array (parse it with [`parse_request`]); `Some(Err)` for an empty or oversize batch
/// (one error reply, id null) or an array that is not valid JSON (-1); else its entries, each to
/// be parsed with [`parse_request`] and answered in one array.
pub fn batch_entries(text: &str) -> Option<Result<Vec<&RawValue>, Rejected>> {
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('[')
    {
        return None;
    }
    let refuse = |error: RpcError| Rejected {
        id: None,
        jsonrpc: true,
        error,
        silent: false,
    };
    let entries: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(entries) => entries,
        Err(e) => {
            return Some(Err(Rejected {
                jsonrpc: false,
                ..refuse(RpcError::new(
                    ErrorCode::ParseError,
                    format!("invalid JSON: {e}"),
                ))
            }));
        }
    };
    if entries.is_empty() {
        return Some(Err(refuse(RpcError::invalid(
            "",
            "an empty batch: send at least one request in the array",
        ))));
    }
    if entries.len() > MAX_BATCH_REQUESTS {
        return Some(Err(refuse(RpcError::invalid(
            "",
            format!(
                "a batch of {} requests; at most {MAX_BATCH_REQUESTS} per batch",
                entries.len()
            ),
        ))));
    }
    Some(Ok(entries))
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    id: Option<&'a RequestId>,
    error: &'a RpcError,
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

fn version(jsonrpc: bool) -> Option<&'static str> {
    jsonrpc.then_some("2.0")
}

// These three serialize only strings, integers and already-valid JSON, which cannot fail; the
// fallback keeps the promise of a reply anyway.
fn to_json<T: Serialize>(frame: &T) -> String {
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

// ---------------------------------------------------------------------------------------------
// Client side

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway answered with an error.
    #[error("the gateway answered with error {0}")]
    Rpc(RpcError),
    /// The connection could not be used.
    #[error("transport failed: {0}")]
    Transport(String),
    /// The connection closed before the reply arrived.
    #[error("the connection closed before the reply arrived")]
    Closed,
    /// The reply or an event did not match the spec's types.
    #[error("the reply does not match the spec: {0}")]
    Decode(#[from] serde_json::Error),
}

/// An event frame as received.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    pub event: String,
    pub data: Value,
    pub seq: Option<u64>,
    /// The turn the event belongs to, and its per-turn counter (decision resumable-runs).
    pub run_id: Option<String>,
    pub run_seq: Option<u64>,
}

/// A request on its way: its events as they arrive, then its reply.
#[derive(Debug)]
pub struct PendingCall {
    pub id: RequestId,
    pub events: mpsc::UnboundedReceiver<EventFrame>,
    pub reply: oneshot::Receiver<Result<Value, RpcError>>,
}

impl PendingCall {
    /// Waits for the reply, ignoring events, and decodes it.
    pub async fn finish<R: DeserializeOwned>(self) -> Result<R, ClientError> {
        match self.reply.await {
            Ok(Ok(value)) => Ok(serde_json::from_value(value)?),
            Ok(Err(error)) => Err(ClientError::Rpc(error)),
            Err(_) => Err(ClientError::Closed),
        }
    }

    pub fn streaming<R>(self) -> Streaming<R> {
        Streaming {
            call: self,
            result: PhantomData,
        }
    }
}

/// A call whose events are read one by one before the reply.
#[derive(Debug)]
pub struct Streaming<R> {
    call: PendingCall,
    result: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> Streaming<R> {
    pub fn id(&self) -> &RequestId {
        &self.call.id
    }

    /// The next event, decoded; `None` once the reply has arrived and every event was read.
    pub async fn next_event(&mut self) -> Option<Result<(Event, Option<u64>), ClientError>> {
        let frame = self.call.events.recv().await?;
        Some(
            Event::decode(&frame.event, frame.data)
                .map(|event| (event, frame.seq))
                .map_err(ClientError::from),
        )
    }

    /// Waits for the reply (events not yet read are dropped).
    pub async fn finish(self) -> Result<R, ClientError> {
        self.call.finish().await
    }
}

/// How the generated `Client` reaches a gateway.
pub trait Transport: Send + Sync {
    /// Sends a request and returns its pending events and reply.
    fn start(
        &self,
        method: &'static str,
        params: Value,
    ) -> impl Future<Output = Result<PendingCall, ClientError>> + Send;
}

/// Params as JSON for a transport.
pub fn to_params<T: Serialize>(params: &T) -> Result<Value, ClientError> {
    Ok(serde_json::to_value(params)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(text: &str) -> Rejected {
        match parse_request(text) {
            Ok(r) => panic!("expected a rejection for {text}, got {r:?}"),
            Err(r) => r,
        }
    }

    #[test]
    fn bad_frames_get_the_documented_codes() {
        assert_eq!(rejected("{nope").error.code, -1);
        assert_eq!(rejected("[1,2]").error.code, -2);
        assert_eq!(
            rejected(r#"{"id":1,"id":2,"method":"system.info"}"#)
                .error
                .code,
            -2
        );
        assert_eq!(rejected("42").error.code, -2);
        assert_eq!(rejected(r#"{"id":1}"#).error.code, -2);
        assert_eq!(
            rejected(r#"{"id":1.5,"method":"system.info"}"#).error.code,
            -2
        );
        assert_eq!(
            rejected(r#"{"id":null,"method":"system.info"}"#).error.code,
            -2
        );
        assert_eq!(rejected(r#"{"id":1,"method":"nope"}"#).error.code, -3);
        assert_eq!(
            rejected(r#"{"id":1,"method":"system.info","params":[1]}"#)
                .error
                .code,
            -2
        );
        let r = rejected(r#"{"jsonrpc":"2.0","id":"a","method":"nope"}"#);
        assert_eq!(
            r.reply(),
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-3,"message":"unknown method `nope`; rpc.discover lists the methods this gateway serves","data":{"method":"nope"}}}"#
        );
    }

    #[test]
    fn a_bad_jsonrpc_marker_is_answered_to_the_readable_id() {
        let r = rejected(r#"{"jsonrpc":"1.0","id":8,"method":"system.info"}"#);
        assert_eq!((r.error.code, r.id), (-2, Some(RequestId::Number(8))));
    }

    #[test]
    fn arrays_and_unknown_members_are_refused() {
        let r = rejected(r#"[7, "2.0", "system.info", {}]"#);
        assert_eq!((r.error.code, r.id), (-2, None));
        let r = rejected(r#"{"id":31,"method":"system.info","extra":true}"#);
        assert_eq!(r.error.code, -2);
        assert_eq!(r.id, Some(RequestId::Number(31)));
        assert_eq!(r.error.data, Some(serde_json::json!({ "path": "extra" })));
    }

    #[test]
    fn json_rpc_2_0_clients_are_understood() {
        // `params: []` is no params.
        let r = parse_request(r#"{"jsonrpc":"2.0","id":1,"method":"system.info","params":[ ]}"#);
        assert_eq!(r.map(|r| r.params.is_none()).ok(), Some(true));
        // A notification runs silently.
        let r = parse_request(r#"{"jsonrpc":"2.0","method":"system.info"}"#);
        assert_eq!(r.map(|r| r.notification).ok(), Some(true));
        let r = rejected(r#"{"jsonrpc":"2.0","method":"nope"}"#);
        assert!(r.silent);
        // ... but one that is not a request object is answered, id null.
        let r = rejected(r#"{"jsonrpc":"2.0","method":1}"#);
        assert!(!r.silent && r.id.is_none());
        // Without the marker an id is still required.
        assert!(!rejected(r#"{"method":"system.info"}"#).silent);
        // Duplicate members are refused, naming the member.
        let r = rejected(r#"{"id":3,"method":"system.info","method":"system.info"}"#);
        assert_eq!(r.error.data, Some(serde_json::json!({ "path": "method" })));
        assert_eq!(r.id, Some(RequestId::Number(3)));
        let r = rejected(r#"{"id":3,"method":"system.info","params":{},"params":{}}"#);
        assert_eq!(r.error.code, -2);
        // Batches.
        assert!(batch_entries(r#"{"id":1}"#).is_none());
        assert!(matches!(batch_entries("[]"), Some(Err(r)) if r.error.code == -2));
        assert!(matches!(batch_entries("[1,"), Some(Err(r)) if r.error.code == -1));
        let many = format!("[{}]", vec!["1"; MAX_BATCH_REQUESTS + 1].join(","));
        assert!(matches!(batch_entries(&many), Some(Err(_))));
        let entries = batch_entries(r#" [{"id":1,"method":"system.info"}, 2]"#);
        assert_eq!(entries.and_then(Result::ok).map(|e| e.len()), Some(2));
    }

    #[test]
    fn ids_are_echoed_unchanged() {
        let r = parse_request(r#"{"id":"abc","method":"system.info"}"#).map_err(|r| r.error);
        assert_eq!(r.map(|r| r.id), Ok(RequestId::String("abc".into())));
        let reply = encode_reply(&RequestId::Number(7), false, &serde_json::json!({}));
        assert_eq!(reply.as_deref(), Ok(r#"{"id":7,"result":{}}"#));
        let reply = encode_reply(&RequestId::String("x".into()), true, &1);
        assert_eq!(
            reply.as_deref(),
            Ok(r#"{"jsonrpc":"2.0","id":"x","result":1}"#)
        );
    }
}
