//! The fast path of request parsing: one pass over the frame, borrowing from the text, for the
//! frames that are well formed (nearly all of them). It answers only "this is a valid request,
//! here it is" or "not sure": anything unusual (a bad member, an unknown method, an escaped
//! method name, invalid JSON) is left to the careful path in `super::parse_request_slow`,
//! which classifies it (-1, -2, -3) and names the member. So the fast path never decides an
//! error reply, and a test checks that it accepts nothing the careful path would refuse.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Request, RequestId};
use crate::Method;

/// A valid request read in one pass, or `None` when the careful path must look at it.
pub(super) fn parse(text: &str) -> Option<Request<'_>> {
    serde_json::from_str::<WellFormed<'_>>(text)
        .ok()
        .map(|frame| frame.0)
}

struct WellFormed<'a>(Request<'a>);

/// The four members a request may have; any other name ends the fast path.
enum Member {
    Id,
    Jsonrpc,
    Method,
    Params,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberName;
        impl Visitor<'_> for MemberName {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("id, jsonrpc, method or params")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
                match name {
                    "id" => Ok(Member::Id),
                    "jsonrpc" => Ok(Member::Jsonrpc),
                    "method" => Ok(Member::Method),
                    "params" => Ok(Member::Params),
                    other => Err(E::unknown_field(other, &[])),
                }
            }
        }
        deserializer.deserialize_identifier(MemberName)
    }
}

impl<'de> Deserialize<'de> for WellFormed<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Frame;
        impl<'de> Visitor<'de> for Frame {
            type Value = WellFormed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a request object")
            }
            // Only `visit_map`: an array must not be read as the members in order.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut id, mut jsonrpc, mut method, mut params) = (None, false, None, None);
                // A repeated member overrides the earlier one, as on the careful path.
                while let Some(member) = map.next_key::<Member>()? {
                    match member {
                        Member::Id => id = Some(map.next_value::<RequestId>()?),
                        Member::Jsonrpc => {
                            let marker: &RawValue = map.next_value()?;
                            if marker.get() != "\"2.0\"" {
                                return Err(de::Error::custom("jsonrpc is not \"2.0\""));
                            }
                            jsonrpc = true;
                        }
                        Member::Method => {
                            // A borrowed `&str` fails on escapes: those go the careful way.
                            let name: &str = map.next_value()?;
                            method = Some(
                                Method::from_name(name)
                                    .ok_or_else(|| de::Error::custom("unknown method"))?,
                            );
                        }
                        Member::Params => {
                            let raw: &RawValue = map.next_value()?;
                            params = match raw.get() {
                                "null" => None,
                                object if object.starts_with('{') => Some(raw),
                                _ => return Err(de::Error::custom("params is not an object")),
                            };
                        }
                    }
                }
                match (id, method) {
                    (Some(id), Some(method)) => Ok(WellFormed(Request {
                        id,
                        jsonrpc,
                        method,
                        params,
                    })),
                    _ => Err(de::Error::custom("id or method missing")),
                }
            }
        }
        deserializer.deserialize_map(Frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
