//! The level of a log line, as ops classifies it (journald priorities, tracing levels, words in
//! container output). The protocol's `ServiceLogLine.level` is an open string ("known values"),
//! so this is not a copy of a spec enum; [`LogLevel::as_str`] gives its wire name.

use serde::{Deserialize, Serialize};

/// Level of a log line as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Debug or trace.
    Debug,
    /// Informational (also notice).
    Info,
    /// Warning.
    Warn,
    /// Error, critical, alert, emergency, fatal, panic.
    Error,
    /// The line carried no level.
    Unknown,
}

impl LogLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}
