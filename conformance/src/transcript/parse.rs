//! Parsing of one transcript line: the header and each step type, with messages that say what
//! is wrong (the caller adds the file and line).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::pattern::{Pattern, PatternError};

use super::model::{AuthNeed, DEFAULT_CONN, GatewayNeeds, Header, Outgoing, Step, StepKind};

fn allowed(map: &Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown member `{k}` (this line type takes {})",
            keys.join(", ")
        )),
        None => Ok(()),
    }
}

fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
    }
}

pub(super) fn parse_header(map: &Map<String, Value>) -> Result<Header, String> {
    allowed(map, &["type", "name", "description", "gateway", "covers"])?;
    let name = string(map, "name")?.ok_or("the header needs a `name`")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "the header `name` {name:?} must be non-empty and use only letters, digits, `-`, `_` and `.`"
        ));
    }
    let description = string(map, "description")?.unwrap_or_default();
    let gateway = match map.get("gateway") {
        None => GatewayNeeds::default(),
        Some(Value::Object(g)) => {
            allowed(g, &["auth", "toml", "queue", "toolApproval", "model"])
                .map_err(|m| format!("gateway: {m}"))?;
            let auth = match string(g, "auth")?.as_deref() {
                None | Some("any") => AuthNeed::Any,
                Some("none") => AuthNeed::None,
                Some("token") => AuthNeed::Token,
                Some(other) => {
                    return Err(format!(
                        "gateway.auth must be \"any\", \"none\" or \"token\", not {other:?}"
                    ));
                }
            };
            let tool_approval = match g.get("toolApproval") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "gateway.toolApproval must be a boolean, not {other}"
                    ));
                }
            };
            GatewayNeeds {
                auth,
                toml: string(g, "toml")?,
                queue: g.get("queue").cloned(),
                tool_approval,
                model: string(g, "model")?,
            }
        }
        Some(other) => return Err(format!("`gateway` must be an object, not {other}")),
    };
    let covers = match map.get("covers") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`covers` entries must be strings, not {v}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`covers` must be a list of strings, not {other}")),
    };
    let unique: BTreeSet<&String> = covers.iter().collect();
    if unique.len() != covers.len() {
        return Err("`covers` lists a tag twice".into());
    }
    Ok(Header {
        name,
        description,
        gateway,
        covers,
    })
}

fn compile(value: &Value, what: &str) -> Result<Pattern, String> {
    Pattern::compile(value).map_err(|PatternError { path, message }| {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at {path}")
        };
        format!("{what}{at}: {message}")
    })
}

pub(super) fn parse_step(
    kind: &str,
    map: &Map<String, Value>,
    line: usize,
) -> Result<Step, String> {
    let conn = string(map, "conn")?;
    if conn.as_deref() == Some("") {
        return Err("`conn` must not be empty".into());
    }
    let step_kind = match kind {
        "connect" => parse_connect(map)?,
        "send" => parse_send(map)?,
        "expect" => parse_expect(map)?,
        "expect-silence" => {
            allowed(map, &["type", "conn", "ms"])?;
            let ms = map
                .get("ms")
                .and_then(Value::as_u64)
                .ok_or("expect-silence needs `ms` (milliseconds, an integer)")?;
            return Ok(Step {
                line,
                conn,
                kind: StepKind::ExpectSilence { ms },
            });
        }
        "expect-close" => {
            allowed(map, &["type", "conn", "code"])?;
            let code = match map.get("code") {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| format!("`code` must be a close code, not {v}"))?,
                ),
            };
            StepKind::ExpectClose { code }
        }
        "close" => {
            allowed(map, &["type", "conn", "code"])?;
            let code = match map.get("code") {
                None => 1000,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| format!("`code` must be a close code, not {v}"))?,
            };
            StepKind::Close { code }
        }
        "comment" => {
            allowed(map, &["type", "text"])?;
            StepKind::Comment
        }
        "http" => StepKind::Http(Box::new(crate::http_step::parse(map)?)),
        "header" => return Err("only the first line is a header".into()),
        other => {
            return Err(format!(
                "unknown line type `{other}`; use connect, send, expect, expect-silence, expect-close, close, http or comment"
            ));
        }
    };
    let conn = match step_kind {
        StepKind::Comment | StepKind::Http(_) => None,
        _ => Some(conn.unwrap_or_else(|| DEFAULT_CONN.to_owned())),
    };
    Ok(Step {
        line,
        conn,
        kind: step_kind,
    })
}

/// A `connect` line: headers, subprotocols, path and the refusal status expected.
fn parse_connect(map: &Map<String, Value>) -> Result<StepKind, String> {
    allowed(
        map,
        &["type", "conn", "headers", "subprotocols", "path", "status"],
    )?;
    let headers = match map.get("headers") {
        None => Vec::new(),
        Some(Value::Object(h)) => h
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| format!("header `{k}` must be a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`headers` must be an object, not {other}")),
    };
    let subprotocols = match map.get("subprotocols") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "`subprotocols` entries must be strings".to_owned())
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => return Err(format!("`subprotocols` must be a list, not {other}")),
    };
    let status = match map.get("status") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| (100..600).contains(n))
                .ok_or_else(|| format!("`status` must be an HTTP status, not {v}"))?,
        ),
    };
    Ok(StepKind::Connect {
        headers,
        subprotocols,
        path: string(map, "path")?,
        status,
    })
}

/// A `send` line: a frame (which may hold `$ref`s) or raw text.
fn parse_send(map: &Map<String, Value>) -> Result<StepKind, String> {
    allowed(map, &["type", "conn", "frame", "raw", "malformed"])?;
    let malformed = match map.get("malformed") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("`malformed` must be a boolean, not {other}")),
    };
    let frame = match (map.get("frame"), map.get("raw")) {
        (Some(frame), None) => Outgoing::Frame {
            pattern: Box::new(compile(frame, "frame")?),
            raw: frame.clone(),
        },
        (None, Some(Value::String(text))) => Outgoing::Raw(text.clone()),
        (None, Some(other)) => return Err(format!("`raw` must be a string, not {other}")),
        _ => return Err("a send line needs exactly one of `frame` and `raw`".into()),
    };
    Ok(StepKind::Send { frame, malformed })
}

/// An `expect` line: one frame, or a batch reply (a non-empty array of replies).
fn parse_expect(map: &Map<String, Value>) -> Result<StepKind, String> {
    allowed(map, &["type", "conn", "frame"])?;
    let raw = map
        .get("frame")
        .ok_or("an expect line needs `frame`")?
        .clone();
    let pattern = compile(&raw, "frame")?;
    match &pattern {
        Pattern::Object { .. } => {
            if !pattern.has_member("id") {
                return Err(
                    "an expected frame needs an `id` (null for frames that answer no request)"
                        .into(),
                );
            }
        }
        // A batch reply: one array frame holding these replies, in any order.
        Pattern::Array(replies) if !replies.is_empty() => {
            for (i, reply) in replies.iter().enumerate() {
                if !matches!(reply, Pattern::Object { .. }) || !reply.has_member("id") {
                    return Err(format!(
                        "frame[{i}]: each reply of an expected batch reply is an object with an `id`"
                    ));
                }
                if reply.has_member("event") {
                    return Err(format!(
                        "frame[{i}]: a batch reply holds replies only; expect events as frames of their own"
                    ));
                }
            }
        }
        _ => {
            return Err(
                "`frame` of an expect line must be an object, or a non-empty array of replies (a batch reply)"
                    .into(),
            );
        }
    }
    Ok(StepKind::Expect { pattern, raw })
}
