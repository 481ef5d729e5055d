//! How `record` turns a live frame into an expectation that holds on the next run: values that
//! change from run to run (generated ids, timestamps, uptimes, pairing codes, connection
//! counts) and values another implementation may word differently (error messages, versions,
//! token counts) become matchers, each with the recorded value as `$example` so `serve` can
//! still play it. A generated id is captured the first time it appears and referenced after
//! that, also inside frames the client sends.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// ISO-8601 UTC timestamps as the protocol writes them.
pub const ISO_TIMESTAMP: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$";
/// Pairing codes (the spec's pattern).
pub const PAIRING_CODE: &str = "^[A-Z0-9]{6,12}$";

/// Keys whose numbers depend on timing or load.
const VOLATILE_NUMBERS: &[&str] = &[
    "uptime",
    "connections",
    "inputTokens",
    "outputTokens",
    "durationMs",
    "elapsedMs",
];
/// Keys whose strings are implementation-specific free text.
const FREE_TEXT: &[&str] = &["version"];

/// State shared by every connection of one recording.
#[derive(Debug, Default)]
pub struct Generalizer {
    /// Captured string value -> capture name.
    captured: HashMap<String, String>,
    used_names: HashMap<String, usize>,
}

/// Whether `s` holds a generated id: a UUID (with or without dashes) or 32+ hex digits.
pub fn contains_generated_id(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .any(|token| {
            let groups: Vec<usize> = token.split('-').map(str::len).collect();
            groups.windows(5).any(|w| w == [8, 4, 4, 4, 12])
                || token.split('-').any(|run| run.len() >= 32)
        })
}

/// Whether `s` is an ISO-8601 timestamp like `2026-11-22T04:15:20.998Z`.
pub fn is_iso_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|r| r.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let r = rest.as_bytes();
    rest == "Z"
        || (r.len() == 6
            && matches!(r[0], b'+' | b'-')
            && r[3] == b':'
            && r[1..3].iter().all(u8::is_ascii_digit)
            && r[4..6].iter().all(u8::is_ascii_digit))
}

/// Whether `s` looks like a generated pairing code.
pub fn is_pairing_code(s: &str) -> bool {
    (6..=12).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Generalizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn name_for(&mut self, key: &str) -> String {
        let base = if key.is_empty() || key.chars().all(|c| c.is_ascii_digit()) {
            "value".to_owned()
        } else {
            key.to_owned()
        };
        let n = self.used_names.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { base } else { format!("{base}{n}") }
    }

    /// A server frame as an expectation (a batch reply, an array, reply by reply).
    pub fn server_frame(&mut self, frame: &Value) -> Value {
        if let Value::Array(replies) = frame {
            return Value::Array(replies.iter().map(|r| self.server_frame(r)).collect());
        }
        let Value::Object(map) = frame else {
            return frame.clone();
        };
        let is_error_event = map.get("event").and_then(Value::as_str) == Some("error");
        let mut out = Map::new();
        for (key, value) in map {
            match key.as_str() {
                // Events are held to `seq` by the wire rules, not by each expectation.
                "seq" if map.contains_key("event") => {}
                "id" | "event" | "jsonrpc" => {
                    out.insert(key.clone(), value.clone());
                }
                "error" => {
                    out.insert(key.clone(), self.error_object(value));
                }
                "data" if is_error_event => {
                    out.insert(key.clone(), self.error_object(value));
                }
                _ => {
                    out.insert(key.clone(), self.walk(key, value));
                }
            }
        }
        Value::Object(out)
    }

    /// `{code, message, data}`: the message is free text.
    fn error_object(&mut self, value: &Value) -> Value {
        let Value::Object(map) = value else {
            return self.walk("error", value);
        };
        let mut out = Map::new();
        for (key, v) in map {
            let g = match (key.as_str(), v) {
                ("message", Value::String(_)) => json!({"$type": "string", "$example": v}),
                ("code", Value::Number(_)) => v.clone(),
                _ => self.walk(key, v),
            };
            out.insert(key.clone(), g);
        }
        Value::Object(out)
    }

    fn walk(&mut self, key: &str, value: &Value) -> Value {
        match value {
            // Data that looks like a matcher (a `$ref` in a JSON Schema) is kept as a literal.
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
                json!({"$literal": value})
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.walk(k, v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.walk(key, v)).collect()),
            Value::String(s) => self.string(key, s),
            Value::Number(n) => {
                let int = n.as_i64();
                if VOLATILE_NUMBERS.contains(&key) {
                    json!({"$type": if int.is_some() { "integer" } else { "number" }, "$example": value})
                } else if int.is_some_and(|i| (1_000_000_000_000..100_000_000_000_000).contains(&i))
                {
                    // Epoch milliseconds.
                    json!({"$type": "integer", "$example": value})
                } else if key == "lastActivity"
                    && int.is_some_and(|i| (1_000_000_000..10_000_000_000).contains(&i))
                {
                    json!({"$type": "integer", "$example": value})
                } else {
                    value.clone()
                }
            }
            other => other.clone(),
        }
    }

    fn string(&mut self, key: &str, s: &str) -> Value {
        if let Some(name) = self.captured.get(s) {
            return json!({"$ref": name});
        }
        if is_iso_timestamp(s) {
            return json!({"$regex": ISO_TIMESTAMP, "$example": s});
        }
        if contains_generated_id(s) {
            let name = self.name_for(key);
            self.captured.insert(s.to_owned(), name.clone());
            return json!({"$capture": name, "$type": "string", "$example": s});
        }
        if key == "code" && is_pairing_code(s) {
            let name = self.name_for("pairingCode");
            self.captured.insert(s.to_owned(), name.clone());
            return json!({"$capture": name, "$regex": PAIRING_CODE, "$example": s});
        }
        if FREE_TEXT.contains(&key) {
            return json!({"$type": "string", "$example": s});
        }
        Value::String(s.to_owned())
    }

    /// A client frame as a frame to send: captured values become `$ref`s.
    pub fn client_frame(&self, frame: &Value) -> Value {
        match frame {
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
                json!({"$literal": frame})
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.client_frame(v)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.client_frame(v)).collect())
            }
            Value::String(s) => match self.captured.get(s) {
                Some(name) => json!({"$ref": name}),
                None => frame.clone(),
            },
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognisers() {
        assert!(contains_generated_id("ws:a730e5d224634df6ba0453b6cbc73451"));
        assert!(contains_generated_id(
            "550e8400-e29b-41d4-a716-446655440000"
        ));
        assert!(!contains_generated_id("telegram:123456"));
        assert!(!contains_generated_id("deadbeef"));
        assert!(is_iso_timestamp("2026-11-22T04:15:20.998Z"));
        assert!(is_iso_timestamp("2026-11-22T04:15:20+01:00"));
        assert!(!is_iso_timestamp("2026-11-22"));
        assert!(!is_iso_timestamp("2026-11-22T04:15:20.Z"));
        assert!(is_pairing_code("K5GU4APW"));
        assert!(!is_pairing_code("overflow"));
        let r = regex::Regex::new(ISO_TIMESTAMP).unwrap();
        assert!(r.is_match("2026-11-22T04:15:20.998Z"));
        assert!(regex::Regex::new(PAIRING_CODE).unwrap().is_match("ABC123"));
    }

    #[test]
    fn volatile_values_become_matchers() {
        let mut g = Generalizer::new();
        let info = json!({"id": 1, "result": {"connectionId": "a730e5d224634df6ba0453b6cbc73451", "connections": 1, "uptime": 5, "version": "0.1.0", "sessionId": "ws:a730e5d224634df6ba0453b6cbc73451"}});
        let e = g.server_frame(&info);
        assert_eq!(e["id"], 1);
        assert_eq!(e["result"]["connectionId"]["$capture"], "connectionId");
        assert_eq!(e["result"]["uptime"]["$type"], "integer");
        assert_eq!(e["result"]["version"]["$type"], "string");
        assert_eq!(e["result"]["sessionId"]["$capture"], "sessionId");
        let pairing = json!({"id": 2, "result": {"code": "K5GU4APW", "expiresAt": "2026-11-22T04:15:20.998Z"}});
        let e = g.server_frame(&pairing);
        assert_eq!(e["result"]["code"]["$capture"], "pairingCode");
        assert_eq!(e["result"]["expiresAt"]["$regex"], ISO_TIMESTAMP);
        let ev = json!({"id": 3, "event": "error", "data": {"code": 3, "message": "full", "queue": {"code": "overflow"}}, "seq": 4});
        let e = g.server_frame(&ev);
        assert!(e.get("seq").is_none());
        assert_eq!(e["data"]["code"], 3);
        assert_eq!(e["data"]["message"]["$type"], "string");
        assert_eq!(e["data"]["queue"]["code"], "overflow");
        let sent = g.client_frame(
            &json!({"id": 4, "method": "x", "params": {"code": "K5GU4APW", "other": "K5"}}),
        );
        assert_eq!(sent["params"]["code"]["$ref"], "pairingCode");
        assert_eq!(sent["params"]["other"], "K5");
        let again = g.server_frame(&json!({"id": 5, "result": {"ids": ["a730e5d224634df6ba0453b6cbc73451"], "lastMessageAt": 1763784621006i64}}));
        assert_eq!(again["result"]["ids"][0]["$ref"], "connectionId");
        assert_eq!(again["result"]["lastMessageAt"]["$type"], "integer");
        let doc = g.server_frame(&json!({"id": 6, "result": {"data": {"$ref": "#/x"}}}));
        assert_eq!(doc["result"]["data"]["$literal"]["$ref"], "#/x");
        let batch = g.server_frame(&json!([{"id": 7, "result": {"uptime": 9}}, {"id": null, "error": {"code": -2, "message": "no"}}]));
        assert_eq!(batch[0]["result"]["uptime"]["$type"], "integer");
        assert_eq!(batch[1]["error"]["message"]["$type"], "string");
    }
}
