//! Per-session overrides stored with the session (`/queue set ...`, model tier, tool approval),
//! and the `/queue` chat commands that change them.

use serde::{Deserialize, Serialize};

use crate::config::{Overflow, QueueMode, QueuePolicy};
use flynn_protocol::types;

/// A partial queue policy: the same type a channel override uses in the config file.
pub use crate::config::QueuePolicyOverride as QueueOverride;

/// What the store keeps in `sessions.config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StoredSessionConfig {
    #[serde(skip_serializing_if = "QueueOverride::is_empty")]
    pub queue: QueueOverride,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_tier: Option<String>,
    /// Set by auto-compaction: messages up to this id are replaced by `summary` in prompts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<Compaction>,
}

/// What auto-compaction left in place of the older history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compaction {
    /// The last message id the summary covers.
    pub through_message_id: i64,
    pub summary: String,
}

impl StoredSessionConfig {
    /// Parses the stored JSON; anything unreadable counts as no overrides.
    pub fn parse(stored: Option<&str>) -> Self {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Option<String> {
        (self != &Self::default())
            .then(|| serde_json::to_string(self).ok())
            .flatten()
    }

    /// The session's policy: its overrides over the channel's.
    pub fn effective_queue(&self, base: &QueuePolicy) -> QueuePolicy {
        self.queue.over(base)
    }
}

pub fn to_wire_queue(p: &QueuePolicy) -> types::QueueConfig {
    types::QueueConfig {
        mode: p.mode,
        cap: std::num::NonZeroU64::new(u64::from(p.cap)).unwrap_or(std::num::NonZeroU64::MIN),
        overflow: p.overflow,
        debounce_ms: p.debounce_ms,
        summarize_overflow: p.summarize_overflow,
    }
}

pub fn describe(p: &QueuePolicy) -> String {
    format!(
        "mode={} cap={} overflow={} debounce={}ms summarize={}",
        serde_plain(&p.mode),
        p.cap,
        serde_plain(&p.overflow),
        p.debounce_ms,
        p.summarize_overflow
    )
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A chat command recognised in `agent.send`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/stop` or `/cancel`: like `agent.cancel`.
    Stop,
    /// `/queue`: show the session's policy.
    QueueShow,
    /// `/queue set ...`.
    QueueSet(QueueOverride),
    /// `/queue reset`.
    QueueReset,
}

/// Recognises a command; `Err` is a malformed command with a message saying how to write it.
pub fn parse_command(message: &str) -> Option<Result<Command, String>> {
    let text = message.trim();
    let mut words = text.split_whitespace();
    match words.next()? {
        "/stop" | "/cancel" if words.next().is_none() => Some(Ok(Command::Stop)),
        "/queue" => Some(match words.next() {
            None => Ok(Command::QueueShow),
            Some("reset") => Ok(Command::QueueReset),
            Some("set") => parse_set(words.collect()),
            Some(other) => Err(format!("unknown /queue subcommand `{other}`; {QUEUE_HELP}")),
        }),
        _ => None,
    }
}

pub const QUEUE_HELP: &str = "usage: /queue | /queue reset | /queue set [MODE] [mode=followup|collect|steer|steer_backlog|interrupt] \
     [cap=N] [overflow=drop_old|drop_new] [debounce=MS] [summarize=true|false]";

fn parse_mode(v: &str) -> Option<QueueMode> {
    serde_json::from_value(serde_json::Value::String(v.to_owned())).ok()
}

fn parse_set(args: Vec<&str>) -> Result<Command, String> {
    if args.is_empty() {
        return Err(format!(
            "/queue set needs at least one setting; {QUEUE_HELP}"
        ));
    }
    let mut o = QueueOverride::default();
    for arg in args {
        let (key, value) = match arg.split_once('=') {
            Some(kv) => kv,
            None => ("mode", arg),
        };
        let bad = || format!("invalid value `{value}` for `{key}`; {QUEUE_HELP}");
        match key {
            "mode" => o.mode = Some(parse_mode(value).ok_or_else(bad)?),
            "cap" => {
                let cap: u32 = value.parse().map_err(|_| bad())?;
                if cap == 0 {
                    return Err(bad());
                }
                o.cap = Some(cap);
            }
            "overflow" => {
                o.overflow = Some(match value {
                    "drop_old" => Overflow::DropOld,
                    "drop_new" => Overflow::DropNew,
                    _ => return Err(bad()),
                })
            }
            "debounce" | "debounceMs" | "debounce_ms" => {
                o.debounce_ms = Some(value.parse().map_err(|_| bad())?)
            }
            "summarize" | "summarizeOverflow" | "summarize_overflow" => {
                o.summarize_overflow = Some(value.parse().map_err(|_| bad())?)
            }
            _ => return Err(format!("unknown setting `{key}`; {QUEUE_HELP}")),
        }
    }
    Ok(Command::QueueSet(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_commands_parse() {
        assert_eq!(parse_command("hello"), None);
        assert_eq!(parse_command("/stop"), Some(Ok(Command::Stop)));
        assert_eq!(parse_command(" /cancel "), Some(Ok(Command::Stop)));
        assert_eq!(parse_command("/queue"), Some(Ok(Command::QueueShow)));
        assert_eq!(parse_command("/queue reset"), Some(Ok(Command::QueueReset)));
        let Some(Ok(Command::QueueSet(o))) =
            parse_command("/queue set collect cap=2 overflow=drop_new debounce=0")
        else {
            panic!("expected a set command");
        };
        assert_eq!(o.mode, Some(QueueMode::Collect));
        assert_eq!(o.cap, Some(2));
        assert_eq!(o.overflow, Some(Overflow::DropNew));
        assert_eq!(o.debounce_ms, Some(0));
        assert!(matches!(parse_command("/queue set cap=0"), Some(Err(_))));
        assert!(matches!(
            parse_command("/queue set mode=bogus"),
            Some(Err(_))
        ));
    }

    #[test]
    fn overrides_apply_over_the_channel_policy() {
        let base = QueuePolicy::default();
        let s = StoredSessionConfig {
            queue: QueueOverride {
                mode: Some(QueueMode::Interrupt),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = s.effective_queue(&base);
        assert_eq!(p.mode, QueueMode::Interrupt);
        assert_eq!(p.cap, base.cap);
        assert_eq!(StoredSessionConfig::parse(s.to_json().as_deref()), s);
    }
}
