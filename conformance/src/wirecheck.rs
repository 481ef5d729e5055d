//! The protocol rules every frame on one connection is held to, beyond the transcript's
//! expectations: the spec's schemas (by the method of the request a frame belongs to), `seq`
//! counting from 1 without gaps, events before their request's reply, one reply per request,
//! and the `jsonrpc` echo. Shared by `run` (server frames), `serve` (client frames) and
//! `record` (both).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::report::FailureKind;
use crate::spec::Spec;

/// A broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct WireIssue {
    pub kind: FailureKind,
    pub path: Option<String>,
    pub message: String,
}

/// Key of a request id (`1`, `"a"`, `null`).
pub fn id_key(id: Option<&Value>) -> String {
    id.map_or_else(|| "null".to_owned(), Value::to_string)
}

/// What a connection has seen so far.
#[derive(Debug, Default)]
pub struct ConnectionRules {
    /// Request id -> (method, when the frame had one; carried `jsonrpc`).
    requests: HashMap<String, (Option<String>, bool)>,
    answered: HashSet<String>,
    last_seq: Option<u64>,
}

impl ConnectionRules {
    /// Notes a frame the client sent (one without an id can get no reply but `id: null`); a
    /// batch (an array) notes each of its entries.
    pub fn note_request(&mut self, frame: &Value) {
        if let Value::Array(entries) = frame {
            for entry in entries.iter().filter(|e| e.is_object()) {
                self.note_request(entry);
            }
            return;
        }
        let Some(id) = frame.get("id").filter(|id| !id.is_null()) else {
            return;
        };
        let method = frame
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let jsonrpc = frame.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let key = id_key(Some(id));
        self.answered.remove(&key);
        self.requests.insert(key, (method, jsonrpc));
    }

    /// Notes a raw text frame the client sent.
    pub fn note_request_text(&mut self, text: &str) {
        if let Ok(frame) = serde_json::from_str::<Value>(text) {
            self.note_request(&frame);
        }
    }

    /// The method of request `id`, if this connection sent it.
    pub fn method_of(&self, id: Option<&Value>) -> Option<&str> {
        self.requests
            .get(&id_key(id))
            .and_then(|(m, _)| m.as_deref())
    }

    /// Checks a frame the server sent. An array is a batch reply (JSON-RPC 2.0 section 6): a
    /// non-empty array of replies, each checked like a frame of its own (paths start with the
    /// element's index); events are never part of one.
    pub fn check_server_frame(&mut self, spec: &Spec, frame: &Value) -> Vec<WireIssue> {
        if let Value::Array(replies) = frame {
            return self.check_batch_reply(spec, replies);
        }
        let id = frame.get("id");
        let key = id_key(id);
        let request = self.requests.get(&key).cloned();
        let method = request.as_ref().and_then(|(m, _)| m.as_deref());
        let mut out: Vec<WireIssue> = spec
            .check_server_frame(frame, method)
            .into_iter()
            .map(|v| WireIssue {
                kind: FailureKind::Spec,
                path: Some(v.path),
                message: v.message,
            })
            .collect();
        let Some(object) = frame.as_object() else {
            return out;
        };
        let is_event = object.contains_key("event");
        let label = if is_event {
            format!(
                "event `{}` for request {key}",
                object.get("event").and_then(Value::as_str).unwrap_or("?")
            )
        } else {
            format!("reply to request {key}")
        };
        if let Some((_, true)) = request
            && object.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
        {
            out.push(WireIssue {
                kind: FailureKind::Spec,
                path: Some("jsonrpc".into()),
                message: format!(
                    "the request carried \"jsonrpc\": \"2.0\", so its {} must echo it",
                    if is_event { "events" } else { "reply" }
                ),
            });
        }
        let has_id = id.is_some_and(|i| !i.is_null());
        if is_event {
            out.extend(self.check_seq(object));
            if has_id {
                out.extend(self.check_event_order(request.is_some(), &key, &label));
            }
        } else if has_id {
            out.extend(self.check_reply_order(request.is_some(), key, &label));
        }
        out
    }

    /// An event's `seq` continues the connection's counter (from 1, without gaps).
    fn check_seq(&mut self, object: &Map<String, Value>) -> Option<WireIssue> {
        let seq = object.get("seq").and_then(Value::as_u64)?;
        let expected = self.last_seq.map_or(1, |s| s + 1);
        self.last_seq = Some(seq);
        (seq != expected).then(|| WireIssue {
            kind: FailureKind::Order,
            path: Some("seq".into()),
            message: format!(
                "seq {seq} where {expected} was due (a per-connection counter from 1 without gaps)"
            ),
        })
    }

    /// An event with an id belongs to a request this connection sent, and comes before its
    /// reply.
    fn check_event_order(&self, sent: bool, key: &str, label: &str) -> Option<WireIssue> {
        if !sent {
            Some(WireIssue {
                kind: FailureKind::Unexpected,
                path: Some("id".into()),
                message: format!("{label}, which this connection never sent"),
            })
        } else if self.answered.contains(key) {
            Some(WireIssue {
                kind: FailureKind::Order,
                path: None,
                message: format!(
                    "{label} arrived after the reply (events of a request come before its reply)"
                ),
            })
        } else {
            None
        }
    }

    /// A reply with an id answers a request this connection sent, once.
    fn check_reply_order(&mut self, sent: bool, key: String, label: &str) -> Option<WireIssue> {
        if !sent {
            Some(WireIssue {
                kind: FailureKind::Unexpected,
                path: Some("id".into()),
                message: format!("{label}, which this connection never sent"),
            })
        } else if !self.answered.insert(key) {
            Some(WireIssue {
                kind: FailureKind::Unexpected,
                path: None,
                message: format!("a second {label} (every request gets exactly one reply)"),
            })
        } else {
            None
        }
    }

    fn check_batch_reply(&mut self, spec: &Spec, replies: &[Value]) -> Vec<WireIssue> {
        let mut out = Vec::new();
        if replies.is_empty() {
            out.push(WireIssue {
                kind: FailureKind::Spec,
                path: Some(String::new()),
                message: "an empty array; a batch whose entries are all notifications gets no frame at all, and an empty batch one error object".into(),
            });
        }
        for (i, reply) in replies.iter().enumerate() {
            let at = |path: Option<String>| {
                Some(match path.as_deref() {
                    None | Some("") => format!("[{i}]"),
                    Some(p) if p.starts_with('[') => format!("[{i}]{p}"),
                    Some(p) => format!("[{i}].{p}"),
                })
            };
            if reply.is_array() || reply.get("event").is_some() {
                out.push(WireIssue {
                    kind: FailureKind::Spec,
                    path: at(None),
                    message: "a batch reply holds only replies (events are frames of their own, sent before it)".into(),
                });
                continue;
            }
            for issue in self.check_server_frame(spec, reply) {
                out.push(WireIssue {
                    path: at(issue.path),
                    ..issue
                });
            }
        }
        out
    }

    /// Checks a frame a client sent (malformed on purpose or not, it must be a request).
    pub fn check_client_frame(&mut self, spec: &Spec, frame: &Value) -> Vec<WireIssue> {
        self.note_request(frame);
        spec.check_request(frame)
            .into_iter()
            .map(|v| WireIssue {
                kind: FailureKind::Spec,
                path: Some(v.path),
                message: v.message,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_seq_and_echo_rules() {
        let spec = Spec::load().unwrap();
        let mut rules = ConnectionRules::default();
        rules.note_request(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "agent.send", "params": {"message": "x"}}),
        );
        let ev =
            json!({"jsonrpc": "2.0", "id": 1, "event": "content", "data": {"text": "a"}, "seq": 1});
        assert!(rules.check_server_frame(&spec, &ev).is_empty());
        let no_echo = json!({"id": 1, "event": "content", "data": {"text": "b"}, "seq": 3});
        let issues = rules.check_server_frame(&spec, &no_echo);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues.iter().any(|i| i.path.as_deref() == Some("jsonrpc")));
        assert!(issues.iter().any(|i| i.kind == FailureKind::Order));
        let reply = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": "ab", "usage": {"inputTokens": 1, "outputTokens": 1}}});
        assert!(rules.check_server_frame(&spec, &reply).is_empty());
        let late = json!({"jsonrpc": "2.0", "id": 1, "event": "done", "data": {"content": "ab"}, "seq": 4});
        let issues = rules.check_server_frame(&spec, &late);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("after the reply"));
        assert_eq!(rules.check_server_frame(&spec, &reply).len(), 1);
        let stray = json!({"id": 9, "result": {}});
        assert_eq!(
            rules.check_server_frame(&spec, &stray)[0].kind,
            FailureKind::Unexpected
        );
    }

    #[test]
    fn batch_replies_are_checked_element_by_element() {
        let spec = Spec::load().unwrap();
        let mut rules = ConnectionRules::default();
        rules.note_request_text(
            r#"[{"jsonrpc":"2.0","id":1,"method":"system.info"},{"jsonrpc":"2.0","method":"system.info"},{"jsonrpc":"2.0","id":2,"method":"system.info"},7]"#,
        );
        let good = json!([
            {"jsonrpc": "2.0", "id": 2, "result": {"version": "1", "uptime": 1, "connections": 1}},
            {"id": null, "error": {"code": -2, "message": "not an object", "data": {"path": ""}}},
            {"jsonrpc": "2.0", "id": 1, "result": {"version": "1", "uptime": 1, "connections": 1}}
        ]);
        assert!(rules.check_server_frame(&spec, &good).is_empty());
        // A second reply to 1, a result breaking its schema, an event inside, no echo.
        let bad = json!([
            {"jsonrpc": "2.0", "id": 1, "result": {"version": "1", "uptime": "soon", "connections": 1}},
            {"jsonrpc": "2.0", "id": 1, "event": "content", "data": {"text": "a"}, "seq": 1}
        ]);
        let issues = rules.check_server_frame(&spec, &bad);
        let paths: Vec<&str> = issues.iter().filter_map(|i| i.path.as_deref()).collect();
        assert!(paths.contains(&"[0].result.uptime"), "{issues:?}");
        assert!(paths.contains(&"[1]"), "{issues:?}");
        assert!(
            issues.iter().any(|i| i.message.contains("a second reply")),
            "{issues:?}"
        );
        assert_eq!(rules.check_server_frame(&spec, &json!([])).len(), 1);
    }
}
