//! The fast path of request parsing: one pass over the frame, borrowing from the text, for the
//! frames that are well formed (nearly all of them). It answers only "this is a valid request,
//! here it is" or "not sure": anything unusual (a bad member, an unknown method, an escaped
//! method name, invalid JSON) is left to the careful path in `super::parse_request_slow`,
//! which classifies it (-1, -2, -3) and names the member. So the fast path never decides an
//! error reply, and a test checks that it accepts nothing the careful path would refuse.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ids::RequestId;
use crate::protocol::WireMethod;
use crate::request::Request;

/// A valid request read in one pass, or `None` when the careful path must look at it.
pub(super) fn parse<M: WireMethod>(text: &str) -> Option<Request<'_, M>> {
    // The derived struct would also read an array as its members in order; arrays are the
    // careful path's to refuse.
    if first_byte(text) != Some(b'{') {
        return None;
    }
    // Unknown or repeated members, an escaped method name (not borrowable) and a bad id fail
    // here and go the careful way.
    let frame: WellFormed<'_> = serde_json::from_str(text).ok()?;
    let method = M::from_name(frame.method)?;
    let params = match frame.params {
        Some(raw) if !raw.get().starts_with('{') => return None,
        params => params,
    };
    Some(Request {
        id: frame.id,
        jsonrpc: frame.jsonrpc,
        method,
        params,
        notification: false,
    })
}

/// The frame's first byte after JSON whitespace (RFC 8259 section 2), without decoding chars:
/// a test of every frame, batch or not (`super::batch_entries` asks it too).
pub(super) fn first_byte(text: &str) -> Option<u8> {
    text.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A request's members, borrowed from the text. Derived rather than hand-visited: serde's
/// generated field matching measured about 20 ns per frame faster.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WellFormed<'a> {
    id: RequestId,
    #[serde(default, deserialize_with = "jsonrpc_marker")]
    jsonrpc: bool,
    method: &'a str,
    /// `null` reads as `None`, as on the careful path.
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// `"jsonrpc"` is accepted only as exactly `"2.0"` (a `null` too fails, and goes the careful
/// way, which refuses it).
fn jsonrpc_marker<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let marker: &'de RawValue = Deserialize::deserialize(deserializer)?;
    match marker.get() {
        "\"2.0\"" => Ok(true),
        _ => Err(serde::de::Error::custom("jsonrpc is not \"2.0\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestMethod as Method;

    fn parse(text: &str) -> Option<Request<'_, Method>> {
        super::parse(text)
    }

    #[test]
    fn plain_requests_take_the_fast_path() {
        let r = parse(r#"{"jsonrpc":"2.0","id":7,"method":"sessions.list","params":{"limit":2}}"#);
        let r = r.map(|r| (r.id, r.jsonrpc, r.method, r.params.map(RawValue::get)));
        assert_eq!(
            r,
            Some((
                RequestId::Number(7),
                true,
                Method::SessionsList,
                Some(r#"{"limit":2}"#)
            ))
        );
        let r = parse(r#"{"method":"system.info","id":"a","params":null}"#);
        assert_eq!(
            r.map(|r| (r.id, r.params.is_none())),
            Some((RequestId::String("a".into()), true))
        );
    }

    #[test]
    fn anything_unusual_is_left_to_the_careful_path() {
        for frame in [
            "{nope",
            "[1,\"system.info\"]",
            r#"[7,"2.0","system.info",{}]"#,
            r#" [7,"2.0","system.info"]"#,
            r#"{"id":1}"#,
            r#"{"method":"system.info"}"#,
            r#"{"id":1.5,"method":"system.info"}"#,
            r#"{"id":1,"method":"nope"}"#,
            r#"{"id":1,"method":"system.\u0069nfo"}"#,
            r#"{"id":1,"method":"system.info","params":[1]}"#,
            r#"{"id":1,"method":"system.info","jsonrpc":"1.0"}"#,
            r#"{"id":1,"method":"system.info","extra":true}"#,
            r#"{"id":1,"method":"system.info"} x"#,
        ] {
            assert!(parse(frame).is_none(), "{frame}");
        }
    }
}
