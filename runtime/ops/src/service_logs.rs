//! `system.serviceLogs`: recent lines of one observability source, masked.
//!
//! * `systemd:flynn` — the daemon's [`crate::LogBuffer`];
//! * `systemd:<backend>` — `journalctl --user -u UNIT -o json -n LINES+1 [--since=-Ns]`;
//! * `docker:<dependency>` — `docker logs --timestamps --tail LINES+1 [--since Ns] CONTAINER`
//!   (both streams).
//!
//! One line more than asked is read so that `truncated` can tell whether more lines matched.

use crate::command::Invocation;
use crate::error::OpsError;
use crate::logs::{RawLine, finish, merge_streams, parse_docker_logs, parse_journal};
use crate::observability::{DAEMON_SOURCE_ID, DOCKER_PREFIX, SYSTEMD_PREFIX};
use crate::ops::{Ops, describe};
use crate::time::now_ms;
use flynn_protocol::types::SystemServiceLogsResult;

/// Default and bounds of `lines`.
pub const LOG_LINES: (u32, u32, u32) = (200, 1, 5000);
/// Bounds of `sinceSeconds` (no default: unset means no time limit).
pub const LOG_SINCE_SECONDS: (u64, u64) = (1, 604_800);

impl Ops {
    /// `system.serviceLogs`: the newest `lines` (default 200) lines of `source_id`, restricted
    /// to the last `since_seconds` when given, oldest first, with secrets masked.
    pub async fn service_logs(
        &self,
        source_id: &str,
        lines: Option<u32>,
        since_seconds: Option<u64>,
    ) -> Result<SystemServiceLogsResult, OpsError> {
        let (default, min, max) = LOG_LINES;
        let limit = lines.unwrap_or(default);
        if !(min..=max).contains(&limit) {
            return Err(OpsError::InvalidParams {
                name: "lines",
                reason: format!("{limit} is out of range; use {min} to {max}"),
            });
        }
        if let Some(since) = since_seconds {
            let (min, max) = LOG_SINCE_SECONDS;
            if !(min..=max).contains(&since) {
                return Err(OpsError::InvalidParams {
                    name: "sinceSeconds",
                    reason: format!("{since} is out of range; use {min} to {max}"),
                });
            }
        }
        let fetched_at = now_ms();
        let raw = if source_id == DAEMON_SOURCE_ID {
            self.daemon_lines(since_seconds, fetched_at)
        } else if let Some(id) = source_id.strip_prefix(SYSTEMD_PREFIX) {
            self.journal_lines(source_id, id, limit, since_seconds)
                .await?
        } else if let Some(id) = source_id.strip_prefix(DOCKER_PREFIX) {
            self.container_lines(source_id, id, limit, since_seconds)
                .await?
        } else {
            return Err(self.unknown_source(source_id).await);
        };
        let max_chars = self.inner.config.max_log_line_chars;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let (lines, redacted, truncated) = finish(raw, limit, max_chars);
        Ok(SystemServiceLogsResult {
            source_id: source_id.to_owned(),
            fetched_at,
            redacted,
            truncated,
            lines,
        })
    }

    async fn unknown_source(&self, source_id: &str) -> OpsError {
        OpsError::UnknownSource {
            id: source_id.to_owned(),
            valid: self.known_source_ids().await,
        }
    }

    fn daemon_lines(&self, since_seconds: Option<u64>, now: u64) -> Vec<RawLine> {
        let cutoff = since_seconds.map(|s| now.saturating_sub(s.saturating_mul(1000)));
        self.inner
            .logs
            .snapshot()
            .into_iter()
            .filter(|record| cutoff.is_none_or(|cutoff| record.ts >= cutoff))
            .map(|record| RawLine {
                ts: record.ts,
                level: record.level,
                text: record.text,
            })
            .collect()
    }

    async fn journal_lines(
        &self,
        source_id: &str,
        backend_id: &str,
        limit: u32,
        since_seconds: Option<u64>,
    ) -> Result<Vec<RawLine>, OpsError> {
        let Some(backend) = self
            .inner
            .config
            .local_backends
            .iter()
            .find(|b| b.id() == backend_id)
        else {
            return Err(self.unknown_source(source_id).await);
        };
        let mut invocation = Invocation::new(&self.inner.config.binaries.journalctl).args([
            "--user".to_owned(),
            "-u".to_owned(),
            backend.unit().to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
            "-n".to_owned(),
            (limit + 1).to_string(),
        ]);
        if let Some(since) = since_seconds {
            invocation = invocation.arg(format!("--since=-{since}s"));
        }
        let output =
            self.inner
                .runner
                .run(&invocation)
                .await
                .map_err(|err| OpsError::LogsUnavailable {
                    source_id: source_id.to_owned(),
                    reason: describe(&err),
                })?;
        Ok(parse_journal(&output.stdout))
    }

    async fn container_lines(
        &self,
        source_id: &str,
        dependency_id: &str,
        limit: u32,
        since_seconds: Option<u64>,
    ) -> Result<Vec<RawLine>, OpsError> {
        let services = self.compose_services().await?;
        let Some(service) = services.iter().find(|s| s.id == dependency_id) else {
            return Err(self.unknown_source(source_id).await);
        };
        let snapshot = self.dependency_snapshot(service).await;
        if let Some(error) = snapshot.view.error {
            return Err(OpsError::LogsUnavailable {
                source_id: source_id.to_owned(),
                reason: error,
            });
        }
        let Some(container) = snapshot
            .container
            .map(|c| c.container_name().to_owned())
            .filter(|name| !name.is_empty())
        else {
            return Err(OpsError::NoContainer {
                source_id: source_id.to_owned(),
            });
        };
        let mut invocation = Invocation::new(&self.inner.config.binaries.docker).args([
            "logs".to_owned(),
            "--timestamps".to_owned(),
            "--tail".to_owned(),
            (limit + 1).to_string(),
        ]);
        if let Some(since) = since_seconds {
            invocation = invocation.args(["--since".to_owned(), format!("{since}s")]);
        }
        let invocation = invocation.arg(container);
        let output =
            self.inner
                .runner
                .run(&invocation)
                .await
                .map_err(|err| OpsError::LogsUnavailable {
                    source_id: source_id.to_owned(),
                    reason: describe(&err),
                })?;
        Ok(merge_streams(
            parse_docker_logs(&output.stdout),
            parse_docker_logs(&output.stderr),
        ))
    }
}
