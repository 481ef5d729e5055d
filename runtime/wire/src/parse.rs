//! Frame parsing with the -1/-2/-3 classification: one text frame into a [`Request`] or a
//! [`Rejected`] frame with the reply it gets, and JSON-RPC 2.0 batches into their entries.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::RpcError;
use crate::ids::RequestId;
use crate::protocol::{WireMethod, codes};
use crate::replies::error_reply;
use crate::request::Request;

mod well_formed;

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
                return Err(RpcError::with_code(
                    codes::PARSE_ERROR,
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
                .map_err(|e| {
                    RpcError::with_code(codes::PARSE_ERROR, format!("invalid JSON: {e}"))
                })?,
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
pub fn parse_request<M: WireMethod>(text: &str) -> Result<Request<'_, M>, Rejected> {
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
pub fn parse_request_slow<M: WireMethod>(text: &str) -> Result<Request<'_, M>, Rejected> {
    let frame = read_frame(text).map_err(|error| Rejected {
        id: None,
        jsonrpc: false,
        error,
        silent: false,
    })?;
    let envelope = read_envelope(&frame)?;
    if let Some(name) = frame.duplicate {
        return Err(envelope.malformed(duplicate_member(name)));
    }
    if let Some(name) = frame.unknown {
        return Err(envelope.malformed(RpcError::invalid(
            name.clone(),
            format!("unknown member `{name}`; a request has only id, method, params and jsonrpc"),
        )));
    }
    let method = read_method::<M>(frame.method, &envelope)?;
    let params = read_params(frame.params, &envelope)?;
    Ok(Request {
        // A notification's id never reaches the wire.
        id: envelope.id.unwrap_or(RequestId::Number(0)),
        jsonrpc: envelope.jsonrpc,
        method,
        params,
        notification: envelope.notification,
    })
}

/// What a reply to a frame needs: the id it answers, whether it speaks JSON-RPC 2.0, and
/// whether the frame is a notification.
struct Envelope {
    id: Option<RequestId>,
    jsonrpc: bool,
    notification: bool,
}

impl Envelope {
    /// A frame that is not a valid request object is answered even when it has no id (with id
    /// null, JSON-RPC 2.0 section 5).
    fn malformed(&self, error: RpcError) -> Rejected {
        Rejected {
            id: self.id.clone(),
            jsonrpc: self.jsonrpc,
            error,
            silent: false,
        }
    }

    /// A valid notification whose call cannot run is not answered.
    fn unservable(&self, error: RpcError) -> Rejected {
        Rejected {
            id: self.id.clone(),
            jsonrpc: self.jsonrpc,
            error,
            silent: self.notification,
        }
    }
}

/// Judges `id` and `jsonrpc`. A bad id is answered with id null; a bad `jsonrpc` is answered to
/// the id, which is read first for that reason.
fn read_envelope(frame: &RawFrame<'_>) -> Result<Envelope, Rejected> {
    let jsonrpc_ok = frame.jsonrpc.map(RawValue::get) == Some("\"2.0\"");
    let unanswerable = |error: RpcError| Rejected {
        id: None,
        jsonrpc: jsonrpc_ok,
        error,
        silent: false,
    };
    // An id repeated is no id at all: the reply cannot say which one it answers.
    if frame.duplicate == Some("id") {
        return Err(unanswerable(duplicate_member("id")));
    }
    let notification = frame.id.is_none() && jsonrpc_ok;
    let id = match frame
        .id
        .map(|raw| serde_json::from_str::<RequestId>(raw.get()))
    {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return Err(unanswerable(RpcError::invalid(
                "id",
                "`id` must be an integer or a string",
            )));
        }
        None if notification => None,
        None => {
            return Err(unanswerable(RpcError::invalid(
                "id",
                "`id` is required (an integer or a string); with \"jsonrpc\": \"2.0\" a request without one is a notification",
            )));
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
    Ok(Envelope {
        id,
        jsonrpc,
        notification,
    })
}

/// The `method` member: a missing or non-string one is malformed, an unknown name unservable.
fn read_method<M: WireMethod>(raw: Option<&RawValue>, envelope: &Envelope) -> Result<M, Rejected> {
    let name: String = match raw.map(|raw| serde_json::from_str::<String>(raw.get())) {
        Some(Ok(name)) => name,
        Some(Err(_)) => {
            return Err(
                envelope.malformed(RpcError::invalid("method", "`method` must be a string"))
            );
        }
        None => {
            return Err(envelope.malformed(RpcError::invalid("method", "`method` is required")));
        }
    };
    M::from_name(&name).ok_or_else(|| envelope.unservable(RpcError::method_not_found(&name)))
}

/// The `params` member: absent, `null` and `[]` are none; an object is kept raw; a by-position
/// array is unservable, anything else malformed.
fn read_params<'a>(
    raw: Option<&'a RawValue>,
    envelope: &Envelope,
) -> Result<Option<&'a RawValue>, Rejected> {
    const BY_NAME: &str = "`params` must be an object of named params (by-position arrays are not supported; `[]` means none)";
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" || is_empty_array(raw.get()) => Ok(None),
        Some(raw) if raw.get().starts_with('{') => Ok(Some(raw)),
        Some(raw) if raw.get().starts_with('[') => {
            Err(envelope.unservable(RpcError::invalid("params", BY_NAME)))
        }
        Some(_) => Err(envelope.malformed(RpcError::invalid("params", BY_NAME))),
    }
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
    if well_formed::first_byte(text) != Some(b'[') {
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
                ..refuse(RpcError::with_code(
                    codes::PARSE_ERROR,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replies::encode_reply;
    use crate::testing::TestMethod;

    fn parse_request(text: &str) -> Result<Request<'_, TestMethod>, Rejected> {
        super::parse_request(text)
    }

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
