//! Log lines from the three kinds of source, normalised to `{ts, level, text}`.
//!
//! * journal (`journalctl -o json`): one JSON object per line; `__REALTIME_TIMESTAMP` is in
//!   microseconds; `MESSAGE` is a string, or an array of bytes when it is not valid UTF-8 or
//!   holds control characters (colour codes); `PRIORITY` 0–3 → error, 4 → warn, 5–6 → info,
//!   7 → debug. Programs writing to stdout get the default priority 6 for every line, so for
//!   priority 6 (or none) a level written in the text (`level=WARN`, `ERROR:`) wins.
//! * docker (`docker logs --timestamps`): `RFC3339NANO text` lines on stdout and stderr, merged
//!   by time; the level comes from the text only (`unknown` when it has none).
//! * the daemon's own [`crate::LogBuffer`].
//!
//! Colour escape sequences and other control characters are removed from the text.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::level::LogLevel;
use crate::masking::mask_secrets;
use crate::time::parse_rfc3339_ms;
use flynn_protocol::types::ServiceLogLine;

/// A line before masking and cutting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// Epoch ms.
    pub ts: u64,
    /// Level.
    pub level: LogLevel,
    /// Text (control characters removed).
    pub text: String,
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    // CSI sequences (colours, cursor moves) and OSC sequences; constant pattern.
    Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
        .expect("constant regex")
});

static LEVEL_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:level|lvl|severity)["']?\s*[=:]\s*["']?([a-z]+)"#)
        .expect("constant regex")
});

static LEVEL_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[\[<(]?(error|err|fatal|panic|critical|crit|warning|warn|info|notice|debug|trace)\b")
        .expect("constant regex")
});

static LEVEL_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(ERROR|FATAL|PANIC|CRITICAL|CRIT|WARNING|WARN|INFO|NOTICE|DEBUG|TRACE)\b")
        .expect("constant regex")
});

/// Forces the patterns of this module to compile (used by the tests).
pub fn log_rules_compile() -> bool {
    [&*ANSI, &*LEVEL_FIELD, &*LEVEL_PREFIX, &*LEVEL_WORD]
        .iter()
        .all(|re| !re.as_str().is_empty())
}

/// Removes colour codes and control characters (tabs stay).
pub fn clean_text(text: &str) -> String {
    let without_escapes = ANSI.replace_all(text, "");
    without_escapes
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn word_level(word: &str) -> Option<LogLevel> {
    match word.to_ascii_lowercase().as_str() {
        "error" | "err" | "fatal" | "panic" | "critical" | "crit" | "alert" | "emerg" => {
            Some(LogLevel::Error)
        }
        "warning" | "warn" => Some(LogLevel::Warn),
        "info" | "notice" | "information" => Some(LogLevel::Info),
        "debug" | "trace" => Some(LogLevel::Debug),
        _ => None,
    }
}

/// The level a line states about itself: a `level=` field, a leading level word
/// (`error: ...`, `[WARN] ...`), or an upper-case level word anywhere (`... ERROR ...`).
pub fn infer_level(text: &str) -> Option<LogLevel> {
    if let Some(level) = LEVEL_FIELD
        .captures(text)
        .and_then(|caps| word_level(&caps[1]))
    {
        return Some(level);
    }
    if let Some(level) = LEVEL_PREFIX
        .captures(text)
        .and_then(|caps| word_level(&caps[1]))
    {
        return Some(level);
    }
    LEVEL_WORD
        .captures(text)
        .and_then(|caps| word_level(&caps[1]))
}

fn priority_level(priority: u8) -> LogLevel {
    match priority {
        0..=3 => LogLevel::Error,
        4 => LogLevel::Warn,
        5 | 6 => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Parses `journalctl -o json` output (one object per line, oldest first). Lines that are not
/// JSON objects are skipped.
pub fn parse_journal(output: &str) -> Vec<RawLine> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter_map(|entry| {
            let object = entry.as_object()?;
            let ts = object
                .get("__REALTIME_TIMESTAMP")
                .and_then(number_or_string)
                .map(|us| us / 1000)
                .unwrap_or(0);
            let text = clean_text(&message_text(object.get("MESSAGE")));
            let priority = object
                .get("PRIORITY")
                .and_then(number_or_string)
                .and_then(|p| u8::try_from(p).ok());
            let level = match priority {
                Some(p) if p != 6 => priority_level(p),
                Some(p) => infer_level(&text).unwrap_or(priority_level(p)),
                None => infer_level(&text).unwrap_or(LogLevel::Unknown),
            };
            Some(RawLine { ts, level, text })
        })
        .collect()
}

fn number_or_string(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `MESSAGE` as text: a string, or an array of bytes decoded as (lossy) UTF-8.
fn message_text(message: Option<&Value>) -> String {
    match message {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(bytes)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Parses `docker logs --timestamps` output of one stream. A line whose timestamp cannot be
/// read keeps the previous line's time.
pub fn parse_docker_logs(output: &str) -> Vec<RawLine> {
    let mut last_ts = 0;
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (ts, text) = match line.split_once(' ') {
                Some((stamp, rest)) => match parse_rfc3339_ms(stamp) {
                    Some(ts) => (ts, rest),
                    None => (last_ts, line),
                },
                None => match parse_rfc3339_ms(line) {
                    Some(ts) => (ts, ""),
                    None => (last_ts, line),
                },
            };
            last_ts = ts;
            let text = clean_text(text);
            let level = infer_level(&text).unwrap_or(LogLevel::Unknown);
            RawLine { ts, level, text }
        })
        .collect()
}

/// Merges the stdout and stderr lines of `docker logs` by time (stable: stdout first on ties).
pub fn merge_streams(mut stdout: Vec<RawLine>, stderr: Vec<RawLine>) -> Vec<RawLine> {
    stdout.extend(stderr);
    stdout.sort_by_key(|line| line.ts);
    stdout
}

/// The final lines of a response: the newest `limit` (oldest first), each cut to
/// `max_chars` and masked. Returns `(lines, redacted, truncated)`.
pub fn finish(
    mut raw: Vec<RawLine>,
    limit: usize,
    max_chars: usize,
) -> (Vec<ServiceLogLine>, bool, bool) {
    let mut truncated = false;
    if raw.len() > limit {
        raw.drain(..raw.len() - limit);
        truncated = true;
    }
    let mut redacted = false;
    let lines = raw
        .into_iter()
        .map(|line| {
            let (text, masked) = mask_secrets(&line.text);
            redacted |= masked;
            let text = match cut(&text, max_chars) {
                Some(cut) => {
                    truncated = true;
                    cut
                }
                None => text,
            };
            ServiceLogLine {
                ts: line.ts,
                level: line.level.as_str().to_owned(),
                text,
            }
        })
        .collect();
    (lines, redacted, truncated)
}

/// `Some(shortened)` when `text` has more than `max_chars` characters. Masking runs before
/// cutting, so a cut never splits a secret into an unmasked piece.
fn cut(text: &str, max_chars: usize) -> Option<String> {
    let (index, _) = text.char_indices().nth(max_chars)?;
    Some(format!("{}…", &text[..index]))
}
