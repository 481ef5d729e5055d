//! The daemon's in-memory log buffer: one per process, shared by the tracing subscriber (which
//! fills it) and `system.serviceLogs` (which reads it).

use std::sync::OnceLock;

use flynn_ops::LogBuffer;

static BUFFER: OnceLock<LogBuffer> = OnceLock::new();

/// Whether log lines on stderr get ANSI colours: only when stderr is a terminal and `NO_COLOR`
/// is unset or empty (no-color.org).
pub fn use_ansi(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The process's log buffer; `capacity` applies when it is first created.
pub fn buffer(capacity: usize) -> LogBuffer {
    BUFFER
        .get_or_init(|| LogBuffer::new(capacity.max(1)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::use_ansi;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_for_a_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(use_ansi(true, Some(OsStr::new(""))));
        assert!(!use_ansi(true, Some(OsStr::new("1"))));
        assert!(!use_ansi(false, None));
    }
}
