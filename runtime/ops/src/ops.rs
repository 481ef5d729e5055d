//! [`Ops`]: the object the gateway's handlers call, one method per protocol method.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::command::{CommandError, CommandRunner};
use crate::config::{OpsConfig, OpsConfigError};
use crate::log_buffer::LogBuffer;
use crate::masking::mask_secrets;
use crate::observability::SeriesStore;

/// Operator views over the configured local backends, docker dependencies and the daemon.
/// Cheap to clone; clones share the sample store and the log buffer.
#[derive(Debug, Clone)]
pub struct Ops {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: OpsConfig,
    pub(crate) runner: CommandRunner,
    pub(crate) update_runner: CommandRunner,
    pub(crate) logs: LogBuffer,
    pub(crate) store: SeriesStore,
    /// The log buffer's error total at the previous sample.
    pub(crate) daemon_errors_seen: AtomicU64,
}

impl Ops {
    /// Validates `config` and builds the views. `logs` is the buffer whose layer the gateway
    /// installed in its tracing subscriber.
    pub fn new(config: OpsConfig, logs: LogBuffer) -> Result<Self, OpsConfigError> {
        config.validate()?;
        let runner = CommandRunner::new(Duration::from_secs(config.command_timeout_secs));
        let update_runner = runner.with_timeout(Duration::from_secs(config.update_timeout_secs));
        let store = SeriesStore::new(config.ring_capacity);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                runner,
                update_runner,
                logs,
                store,
                daemon_errors_seen: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpsConfig {
        &self.inner.config
    }

    /// The daemon's log buffer.
    pub fn log_buffer(&self) -> &LogBuffer {
        &self.inner.logs
    }

    /// The sample store behind `system.observabilitySeries`.
    pub fn series_store(&self) -> &SeriesStore {
        &self.inner.store
    }
}

/// A command error as shown to operators: secrets in the tool's output are masked.
pub(crate) fn describe(error: &CommandError) -> String {
    mask_secrets(&error.to_string()).0
}
