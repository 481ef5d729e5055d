//! The daemon's in-memory log buffer: one per process, shared by the tracing subscriber (which
//! fills it) and `system.serviceLogs` (which reads it).

use std::sync::OnceLock;

use flynn_ops::LogBuffer;

static BUFFER: OnceLock<LogBuffer> = OnceLock::new();

/// The process's log buffer; `capacity` applies when it is first created.
pub fn buffer(capacity: usize) -> LogBuffer {
    BUFFER
        .get_or_init(|| LogBuffer::new(capacity.max(1)))
        .clone()
}
