//! `system.observabilitySources`, the sampler that feeds the series, and
//! `system.observabilitySeries`. Codes and bucketing are described in
//! [`crate::observability`].

use std::future::Future;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::command::Invocation;
use crate::dependencies::DependencySnapshot;
use crate::docker::{MISSING, UNAVAILABLE, uptime_bounds};
use crate::error::OpsError;
use crate::level::LogLevel;
use crate::logs::{RawLine, merge_streams, parse_docker_logs, parse_journal};
use crate::observability::{
    DAEMON_SOURCE_ID, DOCKER_PREFIX, Observation, SYSTEMD_PREFIX, bucket_points,
    docker_health_code, docker_state_code, systemd_health_code, systemd_state_code,
};
use crate::ops::Ops;
use crate::time::now_ms;
use flynn_protocol::types::{
    LocalBackendStatus, ObservabilitySeries, ObservabilitySource, SystemObservabilitySeriesResult,
    SystemObservabilitySourcesResult,
};

/// Default and bounds of `windowMinutes`.
pub const SERIES_WINDOW_MINUTES: (u32, u32, u32) = (60, 1, 1440);
/// Default and bounds of `bucketSeconds`.
pub const SERIES_BUCKET_SECONDS: (u32, u32, u32) = (30, 1, 3600);
/// Most log lines read per source and sample when counting errors.
const ERROR_SCAN_LINES: u32 = 1000;

impl Ops {
    /// `system.observabilitySources`: the daemon, each local backend, each docker dependency,
    /// with their current status. Never fails: a compose file that cannot be read only drops
    /// the docker sources (and is logged).
    pub async fn observability_sources(&self) -> SystemObservabilitySourcesResult {
        let (backends, dependencies) =
            tokio::join!(self.local_backends(), self.dependency_snapshots());
        let mut sources = vec![daemon_source()];
        sources.extend(backends.backends.iter().map(backend_source));
        match dependencies {
            Ok(snapshots) => sources.extend(snapshots.iter().map(dependency_source)),
            Err(err) => tracing::warn!(error = %err, "docker sources left out"),
        }
        SystemObservabilitySourcesResult { sources }
    }

    /// Takes one sample of every source at `now_ms` and appends it to each source's ring.
    pub async fn sample(&self, now_ms: u64) {
        let (backends, dependencies) =
            tokio::join!(self.local_backends(), self.dependency_snapshots());
        let store = &self.inner.store;

        let total = self.inner.logs.errors_total();
        let seen = self.inner.daemon_errors_seen.swap(total, Ordering::Relaxed);
        store.record(
            DAEMON_SOURCE_ID,
            &Observation {
                ts: now_ms,
                state_code: 3,
                health_code: 2,
                error_count: total.saturating_sub(seen),
                instance: None,
                uptime_secs: None,
            },
        );

        let backend_observations = backends.backends.iter().map(|backend| async move {
            let source_id = format!("{SYSTEMD_PREFIX}{}", backend.id);
            let loaded = backend.load_state == "loaded";
            let errors = match store.last_sample_ts(&source_id) {
                Some(since) if loaded => {
                    self.journal_errors_since(&backend.unit, since, now_ms)
                        .await
                }
                _ => 0,
            };
            let observation = Observation {
                ts: now_ms,
                state_code: systemd_state_code(loaded, &backend.active_state),
                health_code: systemd_health_code(loaded, &backend.active_state),
                error_count: errors,
                instance: backend.pid.map(|pid| pid.to_string()),
                uptime_secs: None,
            };
            (source_id, observation)
        });
        let snapshots = match dependencies {
            Ok(snapshots) => snapshots,
            Err(err) => {
                tracing::warn!(error = %err, "docker dependencies not sampled");
                Vec::new()
            }
        };
        let dependency_observations = snapshots.iter().map(|snapshot| async move {
            let source_id = format!("{DOCKER_PREFIX}{}", snapshot.view.id);
            let container = snapshot.container.as_ref();
            let errors = match (store.last_sample_ts(&source_id), container) {
                (Some(since), Some(container)) => {
                    self.docker_errors_since(container.container_name(), since, now_ms)
                        .await
                }
                _ => 0,
            };
            let running = snapshot.view.state == "running";
            let observation = Observation {
                ts: now_ms,
                state_code: docker_state_code(&snapshot.view.state),
                health_code: docker_health_code(&snapshot.view.health),
                error_count: errors,
                instance: container
                    .filter(|c| running && !c.id.is_empty())
                    .map(|c| c.id.clone()),
                uptime_secs: container
                    .filter(|_| running)
                    .and_then(|c| uptime_bounds(&c.status)),
            };
            (source_id, observation)
        });
        let (backend_points, dependency_points) = tokio::join!(
            join_all(backend_observations),
            join_all(dependency_observations)
        );
        for (source_id, observation) in backend_points.into_iter().chain(dependency_points) {
            store.record(&source_id, &observation);
        }
    }

    /// Runs [`Ops::sample`] every `sampler_interval_secs` until `shutdown` completes. The first
    /// sample is taken at once.
    pub fn spawn_sampler<F>(&self, shutdown: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let ops = self.clone();
        let period = Duration::from_secs(self.inner.config.sampler_interval_secs);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = async {
                        interval.tick().await;
                        ops.sample(now_ms()).await;
                    } => {}
                }
            }
            tracing::debug!("observability sampler stopped");
        })
    }

    /// `system.observabilitySeries`: the bucketed samples of `source_ids` (default: every
    /// source) over the `window_minutes` (default 60) ending at `now_ms`, in buckets of
    /// `bucket_seconds` (default 30).
    pub async fn observability_series(
        &self,
        window_minutes: Option<u32>,
        bucket_seconds: Option<u32>,
        source_ids: Option<&[String]>,
        now_ms: u64,
    ) -> Result<SystemObservabilitySeriesResult, OpsError> {
        let window = in_range("windowMinutes", window_minutes, SERIES_WINDOW_MINUTES)?;
        let bucket = in_range("bucketSeconds", bucket_seconds, SERIES_BUCKET_SECONDS)?;
        let known = self.known_source_ids().await;
        let ids: Vec<String> = match source_ids {
            None => known,
            Some(requested) => {
                let mut ids: Vec<String> = Vec::with_capacity(requested.len());
                for id in requested {
                    if !known.contains(id) {
                        return Err(OpsError::UnknownSource {
                            id: id.clone(),
                            valid: known,
                        });
                    }
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
                ids
            }
        };
        let series = ids
            .into_iter()
            .map(|source_id| ObservabilitySeries {
                points: bucket_points(&self.inner.store.points(&source_id), window, bucket, now_ms),
                source_id,
            })
            .collect();
        Ok(SystemObservabilitySeriesResult {
            generated_at: now_ms,
            // `in_range` keeps both at 1 or more.
            window_minutes: NonZeroU64::new(u64::from(window)).unwrap_or(NonZeroU64::MIN),
            bucket_seconds: NonZeroU64::new(u64::from(bucket)).unwrap_or(NonZeroU64::MIN),
            series,
        })
    }

    /// Every source id, without asking systemd or docker (the compose file is read).
    pub async fn known_source_ids(&self) -> Vec<String> {
        let mut ids = vec![DAEMON_SOURCE_ID.to_owned()];
        ids.extend(
            self.inner
                .config
                .local_backends
                .iter()
                .map(|b| format!("{SYSTEMD_PREFIX}{}", b.id())),
        );
        match self.compose_services().await {
            Ok(services) => {
                ids.extend(services.iter().map(|s| format!("{DOCKER_PREFIX}{}", s.id)));
            }
            Err(err) => tracing::warn!(error = %err, "docker sources left out"),
        }
        ids
    }

    async fn journal_errors_since(&self, unit: &str, since_ms: u64, now_ms: u64) -> u64 {
        if !self.inner.config.sample_error_counts {
            return 0;
        }
        let invocation = Invocation::new(&self.inner.config.binaries.journalctl).args([
            "--user".to_owned(),
            "-u".to_owned(),
            unit.to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
            "-n".to_owned(),
            ERROR_SCAN_LINES.to_string(),
            format!("--since=@{}", since_ms / 1000),
        ]);
        match self.inner.runner.run(&invocation).await {
            Ok(output) => count_errors(&parse_journal(&output.stdout), since_ms, now_ms),
            Err(err) => {
                tracing::debug!(unit, error = %err, "journal error count unavailable");
                0
            }
        }
    }

    async fn docker_errors_since(&self, container: &str, since_ms: u64, now_ms: u64) -> u64 {
        if !self.inner.config.sample_error_counts || container.is_empty() {
            return 0;
        }
        let invocation = Invocation::new(&self.inner.config.binaries.docker).args([
            "logs".to_owned(),
            "--timestamps".to_owned(),
            "--tail".to_owned(),
            ERROR_SCAN_LINES.to_string(),
            "--since".to_owned(),
            (since_ms / 1000).to_string(),
            container.to_owned(),
        ]);
        match self.inner.runner.run(&invocation).await {
            Ok(output) => {
                let lines = merge_streams(
                    parse_docker_logs(&output.stdout),
                    parse_docker_logs(&output.stderr),
                );
                count_errors(&lines, since_ms, now_ms)
            }
            Err(err) => {
                tracing::debug!(container, error = %err, "docker error count unavailable");
                0
            }
        }
    }
}

/// Error lines strictly after the previous sample and not after this one.
fn count_errors(lines: &[RawLine], since_ms: u64, now_ms: u64) -> u64 {
    let count = lines
        .iter()
        .filter(|l| l.level == LogLevel::Error && l.ts > since_ms && l.ts <= now_ms)
        .count();
    u64::try_from(count).unwrap_or(u64::MAX)
}

fn in_range(
    name: &'static str,
    value: Option<u32>,
    (default, min, max): (u32, u32, u32),
) -> Result<u32, OpsError> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(OpsError::InvalidParams {
            name,
            reason: format!("{value} is out of range; use {min} to {max}"),
        })
    }
}

fn daemon_source() -> ObservabilitySource {
    ObservabilitySource {
        id: DAEMON_SOURCE_ID.to_owned(),
        name: "Flynn daemon".to_owned(),
        kind: "systemd_system".to_owned(),
        runtime: "systemd_system".to_owned(),
        status: "running".to_owned(),
        graph_capable: true,
        log_capable: true,
    }
}

fn backend_source(backend: &LocalBackendStatus) -> ObservabilitySource {
    let status = if backend.load_state != "loaded" {
        "unknown"
    } else {
        match backend.active_state.as_str() {
            "active" | "activating" | "reloading" | "refreshing" => "running",
            "failed" => "failed",
            "inactive" | "deactivating" | "maintenance" => "stopped",
            _ => "unknown",
        }
    };
    ObservabilitySource {
        id: format!("{SYSTEMD_PREFIX}{}", backend.id),
        name: backend.name.clone(),
        kind: "local_backend".to_owned(),
        runtime: "systemd_user".to_owned(),
        status: status.to_owned(),
        graph_capable: true,
        log_capable: true,
    }
}

fn dependency_source(snapshot: &DependencySnapshot) -> ObservabilitySource {
    let view = &snapshot.view;
    let exit_code = snapshot.container.as_ref().and_then(|c| c.exit_code);
    let status = match view.state.as_str() {
        "running" | "restarting" => "running",
        "dead" => "failed",
        "exited" if exit_code.is_some_and(|code| code != 0) => "failed",
        UNAVAILABLE => "unknown",
        MISSING => "stopped",
        _ => "stopped",
    };
    ObservabilitySource {
        id: format!("{DOCKER_PREFIX}{}", view.id),
        name: view.name.clone(),
        kind: "docker_dependency".to_owned(),
        runtime: "docker_compose".to_owned(),
        status: status.to_owned(),
        graph_capable: true,
        log_capable: snapshot.container.is_some(),
    }
}
