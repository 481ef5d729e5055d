//! Operator views of the Flynn gateway: local backends (systemd --user), docker-compose
//! dependencies, observability series and service logs with secret masking.
//!
//! The gateway builds one [`Ops`] from its `[ops]` config ([`OpsConfig`]) and a [`LogBuffer`]
//! whose [`LogBufferLayer`] it installed in its tracing subscriber, starts
//! [`Ops::spawn_sampler`], and answers the seven methods with:
//!
//! | method | call |
//! | --- | --- |
//! | `system.localBackends` | [`Ops::local_backends`] |
//! | `system.localBackendControl` | [`Ops::local_backend_control`] |
//! | `system.dockerDependencies` | [`Ops::docker_dependencies`] |
//! | `system.dockerDependencyControl` | [`Ops::docker_dependency_control`] |
//! | `system.observabilitySources` | [`Ops::observability_sources`] |
//! | `system.observabilitySeries` | [`Ops::observability_series`] |
//! | `system.serviceLogs` | [`Ops::service_logs`] |
//!
//! Results are the protocol's generated types (`flynn_protocol::types`), returned as they are. External tools are run
//! without a shell, with a deadline, and killed (their whole process group) when it passes.

mod backends;
pub mod command;
pub mod compose;
pub mod config;
mod dependencies;
pub mod docker;
mod error;
pub mod level;
pub mod log_buffer;
pub mod logs;
pub mod masking;
pub mod observability;
mod ops;
mod sampler;
mod service_logs;
pub mod systemd;
pub mod time;

/// The daemon's own name: reserved as a local backend id (its source is `systemd:flynn`).
pub const DAEMON_NAME: &str = "flynn";

pub use command::{CommandError, CommandRunner};
pub use config::{
    BackendProvider, BinariesConfig, DockerConfig, LocalBackendConfig, OpsConfig, OpsConfigError,
};
pub use error::OpsError;
pub use level::LogLevel;
pub use log_buffer::{LogBuffer, LogBufferLayer, LogRecord};
pub use masking::mask_secrets;
pub use observability::{DAEMON_SOURCE_ID, SeriesStore};
pub use ops::Ops;
pub use sampler::{SERIES_BUCKET_SECONDS, SERIES_WINDOW_MINUTES};
pub use service_logs::{LOG_LINES, LOG_SINCE_SECONDS};
