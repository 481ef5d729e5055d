//! The daemon's own recent log lines, kept in memory for `system.serviceLogs` on the daemon
//! source, and the `tracing` layer that fills it.
//!
//! The gateway creates one [`LogBuffer`], installs [`LogBuffer::layer`] in its subscriber and
//! hands the buffer to [`crate::Ops`]. The buffer is bounded: past its capacity the oldest line
//! is dropped. Lines are stored as logged; masking happens when they are read.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::level::LogLevel;
use crate::time::now_ms;

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When it was logged (epoch ms).
    pub ts: u64,
    /// Its level.
    pub level: LogLevel,
    /// Message followed by the event's fields as `key=value`.
    pub text: String,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    lines: Mutex<VecDeque<LogRecord>>,
    errors_total: AtomicU64,
}

/// A bounded, shared ring of log lines; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    inner: Arc<Inner>,
}

impl LogBuffer {
    /// A buffer keeping at most `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Inner {
                capacity,
                lines: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
                errors_total: AtomicU64::new(0),
            }),
        }
    }

    /// The layer that captures INFO and above into this buffer.
    pub fn layer(&self) -> LogBufferLayer {
        LogBufferLayer {
            buffer: self.clone(),
            max_level: Level::INFO,
        }
    }

    /// The most lines kept.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Appends a line, dropping the oldest past capacity.
    pub fn push(&self, record: LogRecord) {
        if record.level == LogLevel::Error {
            self.inner.errors_total.fetch_add(1, Ordering::Relaxed);
        }
        let mut lines = self.lock();
        if lines.len() >= self.inner.capacity {
            lines.pop_front();
        }
        lines.push_back(record);
    }

    /// Every line kept, oldest first.
    pub fn snapshot(&self) -> Vec<LogRecord> {
        self.lock().iter().cloned().collect()
    }

    /// Error lines pushed since the buffer was created (including dropped ones).
    pub fn errors_total(&self) -> u64 {
        self.inner.errors_total.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<LogRecord>> {
        // A panic while holding the lock cannot leave the deque inconsistent (push/pop are
        // atomic with respect to it), so a poisoned lock is still usable.
        self.inner
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A `tracing_subscriber` layer writing events into a [`LogBuffer`].
///
/// It filters only inside `on_event` (never through `enabled`), so it cannot change what other
/// layers of the subscriber see.
#[derive(Debug, Clone)]
pub struct LogBufferLayer {
    buffer: LogBuffer,
    max_level: Level,
}

impl LogBufferLayer {
    /// Captures events up to `level` in verbosity (default INFO: INFO, WARN, ERROR).
    pub fn with_max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }
}

impl<S: Subscriber> Layer<S> for LogBufferLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() > self.max_level {
            return;
        }
        let mut visitor = FieldText::default();
        event.record(&mut visitor);
        self.buffer.push(LogRecord {
            ts: now_ms(),
            level: level_of(*metadata.level()),
            text: visitor.finish(),
        });
    }
}

fn level_of(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Formats an event as `message key=value key2="value with spaces"`.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
}

impl FieldText {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }

    fn push_field(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{name}={value}");
    }
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if value.contains(char::is_whitespace) || value.is_empty() {
            self.push_field(field.name(), format_args!("{value:?}"));
        } else {
            self.push_field(field.name(), format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.push_field(field.name(), format_args!("{value:?}"));
        }
    }
}
