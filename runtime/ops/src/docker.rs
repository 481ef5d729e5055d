//! Container states from `docker compose ps --all --format json` and the
//! `system.dockerDependencies` view built from them.
//!
//! Compose printed one JSON array before v2.21 and prints one JSON object per line since; both
//! are accepted. Fields used: `Service`, `Name` (or `Names`), `State`, `Health`, `Status`,
//! `ID`, `ExitCode`; any of them may be missing or `null`.

use serde::Deserialize;

use crate::compose::ComposeService;
use flynn_protocol::types::{ControlAction, DockerDependencyState, DockerDependencyStatus};

/// `state` of a service that has no container.
pub const MISSING: &str = "missing";
/// `state` of every service when docker could not be asked.
pub const UNAVAILABLE: &str = "unavailable";

/// One container as compose reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ComposeContainer {
    /// Container id (short or full).
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    /// Container name (`Name`, or `Names` in the older form).
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "Names", default, deserialize_with = "nullable")]
    names: String,
    /// Compose service.
    #[serde(rename = "Service", default, deserialize_with = "nullable")]
    pub service: String,
    /// `running`, `exited`, `restarting`, `paused`, `created`, `dead`, `removing`.
    #[serde(rename = "State", default, deserialize_with = "nullable")]
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` or empty (no health check).
    #[serde(rename = "Health", default, deserialize_with = "nullable")]
    pub health: String,
    /// `Up 4 minutes (healthy)`, `Exited (1) 2 seconds ago`.
    #[serde(rename = "Status", default, deserialize_with = "nullable")]
    pub status: String,
    /// Exit code of the last run.
    #[serde(rename = "ExitCode", default)]
    pub exit_code: Option<i64>,
}

impl ComposeContainer {
    /// The container name from whichever field compose filled.
    pub fn container_name(&self) -> &str {
        if self.name.is_empty() {
            self.names.split(',').next().unwrap_or_default()
        } else {
            &self.name
        }
    }
}

fn nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// Parses `docker compose ps --format json` output in either form. Lines that are not JSON
/// (warnings some versions print to stdout) are skipped.
pub fn parse_ps(output: &str) -> Result<Vec<ComposeContainer>, String> {
    let trimmed = output.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|err| format!("docker compose ps printed an invalid JSON array: {err}"));
    }
    let mut containers = Vec::new();
    for line in trimmed.lines().map(str::trim) {
        if line.starts_with('{') {
            let container = serde_json::from_str(line)
                .map_err(|err| format!("docker compose ps printed an invalid JSON line: {err}"))?;
            containers.push(container);
        } else if line.starts_with('[') {
            let mut list: Vec<ComposeContainer> = serde_json::from_str(line)
                .map_err(|err| format!("docker compose ps printed an invalid JSON array: {err}"))?;
            containers.append(&mut list);
        }
    }
    Ok(containers)
}

/// The container to report for a service: the first running one, else the first listed
/// (a scaled service has several).
pub fn container_for<'a>(
    containers: &'a [ComposeContainer],
    service: &str,
) -> Option<&'a ComposeContainer> {
    let mut of_service = containers.iter().filter(|c| c.service == service);
    let first = of_service.clone().next();
    of_service.find(|c| c.state == "running").or(first)
}

/// Running-like states offer restart and stop; the others start. `update` is always offered
/// while docker answers.
pub fn available_actions(state: &str) -> Vec<ControlAction> {
    match state {
        UNAVAILABLE => Vec::new(),
        "running" | "restarting" | "paused" => vec![
            ControlAction::Restart,
            ControlAction::Stop,
            ControlAction::Update,
        ],
        _ => vec![ControlAction::Start, ControlAction::Update],
    }
}

/// The view of one service given its container (or none).
pub fn dependency_view(
    service: &ComposeService,
    container: Option<&ComposeContainer>,
) -> DockerDependencyStatus {
    match container {
        Some(container) => {
            let state = if container.state.is_empty() {
                "unknown".to_owned()
            } else {
                container.state.to_ascii_lowercase()
            };
            let health = if container.health.is_empty() {
                "none".to_owned()
            } else {
                container.health.to_ascii_lowercase()
            };
            let status_text = if container.status.is_empty() {
                state.clone()
            } else {
                container.status.clone()
            };
            let name = container.container_name();
            DockerDependencyStatus {
                id: service.id.clone(),
                name: service.name.clone(),
                service: service.service.clone(),
                configured: true,
                available_actions: available_actions(&state),
                state,
                health,
                status_text,
                container_name: (!name.is_empty()).then(|| name.to_owned()),
                error: None,
            }
        }
        None => DockerDependencyStatus {
            id: service.id.clone(),
            name: service.name.clone(),
            service: service.service.clone(),
            configured: true,
            state: MISSING.to_owned(),
            health: "none".to_owned(),
            status_text: "no container (not created yet)".to_owned(),
            container_name: None,
            available_actions: available_actions(MISSING),
            error: None,
        },
    }
}

/// The view of a service when docker failed: still listed, with the reason.
pub fn unavailable_view(service: &ComposeService, error: &str) -> DockerDependencyStatus {
    let first_line = error.lines().next().unwrap_or_default();
    DockerDependencyStatus {
        id: service.id.clone(),
        name: service.name.clone(),
        service: service.service.clone(),
        configured: true,
        state: UNAVAILABLE.to_owned(),
        health: "unknown".to_owned(),
        status_text: format!("unavailable: {first_line}"),
        container_name: None,
        available_actions: Vec::new(),
        error: Some(error.to_owned()),
    }
}

/// The short state after a control action: `running (healthy)`, `exited`.
pub fn short_state(dependency: &DockerDependencyStatus) -> DockerDependencyState {
    let status_text = match dependency.health.as_str() {
        "none" | "unknown" | "" => dependency.state.clone(),
        health => format!("{} ({health})", dependency.state),
    };
    DockerDependencyState {
        id: dependency.id.clone(),
        state: dependency.state.clone(),
        health: dependency.health.clone(),
        status_text,
    }
}

/// Lower and upper bound, in seconds, of the uptime in a docker `Status` such as
/// `Up 5 seconds (healthy)` or `Up About an hour`; `None` when the container is not up.
/// Docker rounds durations to words (`About a minute`, `3 hours`), hence a range.
pub fn uptime_bounds(status: &str) -> Option<(u64, u64)> {
    let rest = status.strip_prefix("Up ")?;
    let rest = rest.split(" (").next().unwrap_or(rest).trim();
    if rest.starts_with("Less than a second") {
        return Some((0, 1));
    }
    if rest.starts_with("About a minute") {
        return Some((60, 120));
    }
    if rest.starts_with("About an hour") {
        return Some((3600, 7200));
    }
    let mut words = rest.split_whitespace();
    let count: u64 = words.next()?.parse().ok()?;
    let unit = words.next()?.trim_end_matches('s');
    let seconds = match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        "month" => 2_592_000,
        "year" => 31_536_000,
        _ => return None,
    };
    Some((
        count.saturating_mul(seconds),
        count.saturating_add(1).saturating_mul(seconds),
    ))
}
