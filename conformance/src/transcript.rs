//! The transcript format (README.md, "Transcript format"): one JSON object per line, a header
//! first, then steps. Loading checks the shape of every line and compiles every expected frame,
//! so a typo is reported with its file and line before anything connects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::http_step::HttpStep;
use crate::pattern::{Pattern, PatternError};

/// The connection steps use when they name none.
pub const DEFAULT_CONN: &str = "main";

/// A transcript that cannot be used, with where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct TranscriptError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// What the gateway must allow for the transcript to make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthNeed {
    /// Works with or without a token (the runner sends `--token` when given).
    #[default]
    Any,
    /// The gateway must not require a token.
    None,
    /// The gateway must require a token (the transcript shows token paths).
    Token,
}

impl AuthNeed {
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::None => "none",
            Self::Token => "token",
        }
    }
}

/// The header's `gateway` object.
#[derive(Debug, Clone, Default)]
pub struct GatewayNeeds {
    pub auth: AuthNeed,
    /// Extra TOML for the Flynn daemon (`conformance/gateway.toml` holds the union).
    pub toml: Option<String>,
    /// The queue policy the transcript puts its session in (documentation and coverage).
    pub queue: Option<Value>,
    /// The transcript turns tool approval on.
    pub tool_approval: bool,
    /// The model the transcript's agent runs rely on (`embedded`: the directive-driven default).
    pub model: Option<String>,
}

/// The first line.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub description: String,
    pub gateway: GatewayNeeds,
    /// Feature tags this transcript demonstrates (`auth:header`, `queue:collect`, ...).
    pub covers: Vec<String>,
}

/// A frame a `send` step puts on the wire.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A JSON frame; may hold `$ref`s.
    Frame { pattern: Box<Pattern>, raw: Value },
    /// Text sent as is (malformed frames).
    Raw(String),
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Opens the connection with these headers and subprotocols (`${TOKEN}` and
    /// `${TOKEN_B64URL}` are replaced by the token). `status` expects the HTTP handshake to fail
    /// with that status instead.
    Connect {
        headers: Vec<(String, String)>,
        subprotocols: Option<Vec<String>>,
        path: Option<String>,
        status: Option<u16>,
    },
    Send {
        frame: Outgoing,
        /// The frame breaks the spec on purpose (`validate` checks that it really does).
        malformed: bool,
    },
    Expect {
        pattern: Pattern,
        raw: Value,
    },
    /// No frame arrives for `ms` (on `conn`, or on every connection when none is named).
    ExpectSilence {
        ms: u64,
    },
    /// The server closes the connection (with `code`, when given).
    ExpectClose {
        code: Option<u16>,
    },
    /// The client closes the connection.
    Close {
        code: u16,
    },
    /// An HTTP request to the gateway's port and the answer expected (`crate::http_step`).
    /// It belongs to no connection.
    Http(Box<HttpStep>),
    /// A note for readers; ignored.
    Comment,
}

/// One line after the header.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    /// `None` only for `expect-silence` on every connection.
    pub conn: Option<String>,
    pub kind: StepKind,
}

impl Step {
    /// The connection name (`main` when the line names none).
    pub fn conn_name(&self) -> &str {
        self.conn.as_deref().unwrap_or(DEFAULT_CONN)
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StepKind::Connect { .. } => "connect",
            StepKind::Send { .. } => "send",
            StepKind::Expect { .. } => "expect",
            StepKind::ExpectSilence { .. } => "expect-silence",
            StepKind::ExpectClose { .. } => "expect-close",
            StepKind::Close { .. } => "close",
            StepKind::Http(_) => "http",
            StepKind::Comment => "comment",
        }
    }
}

/// A loaded transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub path: PathBuf,
    pub header: Header,
    pub steps: Vec<Step>,
}

impl Transcript {
    pub fn name(&self) -> &str {
        &self.header.name
    }

    /// Connection names in order of first use.
    pub fn connections(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for step in &self.steps {
            if matches!(step.kind, StepKind::Comment | StepKind::Http(_)) {
                continue;
            }
            if let Some(c) = &step.conn
                && !seen.contains(c)
            {
                seen.push(c.clone());
            }
        }
        seen
    }

    /// Reads a transcript file.
    pub fn load(path: &Path) -> Result<Self, TranscriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| TranscriptError {
            path: path.to_owned(),
            line: 0,
            message: format!("cannot read the transcript: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses transcript text (`path` is only used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, TranscriptError> {
        let err = |line: usize, message: String| TranscriptError {
            path: path.to_owned(),
            line,
            message,
        };
        let mut header = None;
        let mut steps = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            if raw_line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(raw_line)
                .map_err(|e| err(line, format!("not a JSON object: {e}")))?;
            let Value::Object(map) = value else {
                return Err(err(line, "each line must be a JSON object".into()));
            };
            let kind = map
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| err(line, "missing `type`".into()))?
                .to_owned();
            if header.is_none() {
                if kind != "header" {
                    return Err(err(
                        line,
                        format!(
                            "the first line must be the header (`\"type\": \"header\"`), not `{kind}`"
                        ),
                    ));
                }
                header = Some(parse_header(&map).map_err(|m| err(line, m))?);
                continue;
            }
            let step = parse_step(&kind, &map, line).map_err(|m| err(line, m))?;
            steps.push(step);
        }
        let header = header
            .ok_or_else(|| err(0, "the transcript is empty; it needs a header line".into()))?;
        Ok(Transcript {
            path: path.to_owned(),
            header,
            steps,
        })
    }
}

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

fn parse_header(map: &Map<String, Value>) -> Result<Header, String> {
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

fn parse_step(kind: &str, map: &Map<String, Value>, line: usize) -> Result<Step, String> {
    let conn = string(map, "conn")?;
    if conn.as_deref() == Some("") {
        return Err("`conn` must not be empty".into());
    }
    let step_kind = match kind {
        "connect" => {
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
            StepKind::Connect {
                headers,
                subprotocols,
                path: string(map, "path")?,
                status,
            }
        }
        "send" => {
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
            StepKind::Send { frame, malformed }
        }
        "expect" => {
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
            StepKind::Expect { pattern, raw }
        }
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

/// Writes one transcript line with its members in reading order (`type` and `conn` first),
/// whatever order the map holds them in.
pub fn render_line(line: &Value) -> String {
    const ORDER: &[&str] = &[
        "type",
        "conn",
        "name",
        "description",
        "gateway",
        "covers",
        "headers",
        "subprotocols",
        "path",
        "status",
        "request",
        "response",
        "undeclared",
        "frame",
        "raw",
        "malformed",
        "ms",
        "code",
        "text",
    ];
    let Value::Object(map) = line else {
        return line.to_string();
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let members: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Expands `PATHS` (files or folders of `*.jsonl`, sorted) into transcript files.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, TranscriptError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| TranscriptError {
                path: path.clone(),
                line: 0,
                message: format!("cannot list the folder: {e}"),
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(TranscriptError {
                    path: path.clone(),
                    line: 0,
                    message: "the folder holds no *.jsonl transcripts".into(),
                });
            }
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Loads every transcript under `paths`; names must be unique.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Transcript>, TranscriptError> {
    let mut out: Vec<Transcript> = Vec::new();
    for path in expand_paths(paths)? {
        let t = Transcript::load(&path)?;
        if let Some(other) = out.iter().find(|o| o.name() == t.name()) {
            return Err(TranscriptError {
                path: path.clone(),
                line: 1,
                message: format!(
                    "the name `{}` is already used by {}",
                    t.name(),
                    other.path.display()
                ),
            });
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        Transcript::parse(Path::new("t.jsonl"), text)
    }

    #[test]
    fn parses_a_small_transcript() {
        let t = parse(concat!(
            r#"{"type":"header","name":"x","gateway":{"auth":"token"},"covers":["auth:header"]}"#,
            "\n",
            r#"{"type":"connect","headers":{"Authorization":"Bearer ${TOKEN}"}}"#,
            "\n",
            r#"{"type":"send","frame":{"id":1,"method":"system.info"}}"#,
            "\n",
            "\n",
            r#"{"type":"expect","frame":{"id":1,"result":{"uptime":{"$type":"integer"}}}}"#,
            "\n",
            r#"{"type":"send","conn":"b","raw":"{nope"}"#,
            "\n",
            r#"{"type":"expect-silence","ms":10}"#,
            "\n",
            r#"{"type":"close"}"#,
            "\n",
        ))
        .unwrap();
        assert_eq!(t.header.gateway.auth, AuthNeed::Token);
        assert_eq!(t.steps.len(), 6);
        assert_eq!(t.steps[3].line, 6);
        assert_eq!(t.connections(), vec!["main", "b"]);
        assert!(t.steps[4].conn.is_none());
    }

    #[test]
    fn reports_the_line_of_a_mistake() {
        let e = parse("{\"type\":\"header\",\"name\":\"x\"}\n{\"type\":\"expect\",\"frame\":{\"id\":1,\"result\":{\"$tpye\":\"x\"}}}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("$tpye"), "{e}");
        let e = parse("{\"type\":\"send\"}").unwrap_err();
        assert!(e.message.contains("header"));
        let e = parse(
            "{\"type\":\"header\",\"name\":\"x\"}\n{\"type\":\"expect\",\"frame\":{\"result\":1}}",
        )
        .unwrap_err();
        assert!(e.message.contains("id"));
        let e = parse(
            "{\"type\":\"header\",\"name\":\"x\"}\n{\"type\":\"send\",\"frame\":{},\"extra\":1}",
        )
        .unwrap_err();
        assert!(e.message.contains("extra"));
    }

    #[test]
    fn a_batch_reply_is_an_array_of_replies() {
        let header = r#"{"type":"header","name":"x"}"#;
        let t = parse(&format!(
            "{header}\n{}\n",
            r#"{"type":"expect","frame":[{"id":1,"result":{}},{"id":null,"error":{"code":-2}}]}"#
        ))
        .unwrap();
        assert!(matches!(
            &t.steps[0].kind,
            StepKind::Expect { pattern: Pattern::Array(r), .. } if r.len() == 2
        ));
        for (bad, why) in [
            (r#"[]"#, "non-empty"),
            (r#"[{"result":{}}]"#, "`id`"),
            (r#"[{"id":1,"event":"done","data":{}}]"#, "replies only"),
            (r#"[1]"#, "`id`"),
            (r#"7"#, "object"),
        ] {
            let e = parse(&format!(
                "{header}\n{{\"type\":\"expect\",\"frame\":{bad}}}\n"
            ))
            .unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
        }
    }
}
