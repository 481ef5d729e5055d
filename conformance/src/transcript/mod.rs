//! The transcript format (README.md, "Transcript format"): one JSON object per line, a header
//! first, then steps. Loading checks the shape of every line and compiles every expected frame,
//! so a typo is reported with its file and line before anything connects.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod model;
mod parse;

pub use model::{AuthNeed, DEFAULT_CONN, GatewayNeeds, Header, Outgoing, Step, StepKind};
use parse::{parse_header, parse_step};

/// A transcript that cannot be used, with where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct TranscriptError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
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
    use crate::pattern::Pattern;

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
