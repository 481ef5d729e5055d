//! Local backends as systemd user units: reading `systemctl --user show` and turning it into
//! the `system.localBackends` view.

use std::collections::BTreeMap;

use crate::config::{BackendProvider, LocalBackendConfig};
use flynn_protocol::types::{ControlAction, LocalBackendState, LocalBackendStatus};

/// The properties asked of `systemctl --user show`.
pub const SHOW_PROPERTIES: &str =
    "LoadState,ActiveState,SubState,UnitFileState,Description,MainPID,Result,ExecMainStatus";

/// `activeState` of an entry whose status could not be read.
pub const UNAVAILABLE: &str = "unavailable";

/// The arguments of the status query for `unit`.
pub fn show_args(unit: &str) -> Vec<String> {
    vec![
        "--user".to_owned(),
        "show".to_owned(),
        unit.to_owned(),
        format!("--property={SHOW_PROPERTIES}"),
    ]
}

/// The properties of one unit, as printed by `systemctl show` (`Key=Value` lines, in any
/// order; a value may itself contain `=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProperties {
    values: BTreeMap<String, String>,
}

impl UnitProperties {
    /// One property; `None` when systemctl did not print it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn non_empty(&self, key: &str) -> Option<String> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(ToOwned::to_owned)
    }

    /// `MainPID` when the unit has a main process (systemd prints 0 otherwise).
    pub fn main_pid(&self) -> Option<u32> {
        self.get("MainPID")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|pid| *pid > 0)
    }
}

/// Parses `systemctl show` output.
pub fn parse_show(output: &str) -> UnitProperties {
    let values = output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim_end().to_owned()))
        .collect();
    UnitProperties { values }
}

/// States that count as "running" for the choice of actions and the charts.
fn is_running_state(active: &str) -> bool {
    matches!(active, "active" | "activating" | "reloading" | "refreshing")
}

/// The actions a unit in this state accepts: running units can be restarted or stopped,
/// stopped ones started; `update` is offered for both providers while the unit exists.
/// A unit that is not loaded (not installed, masked) or whose state is unknown offers none.
pub fn available_actions(
    provider: BackendProvider,
    load_state: &str,
    active_state: &str,
) -> Vec<ControlAction> {
    if load_state != "loaded" {
        return Vec::new();
    }
    let mut actions = if is_running_state(active_state) {
        vec![ControlAction::Restart, ControlAction::Stop]
    } else if matches!(
        active_state,
        "inactive" | "failed" | "deactivating" | "maintenance"
    ) {
        vec![ControlAction::Start]
    } else {
        Vec::new()
    };
    match provider {
        BackendProvider::Ollama | BackendProvider::Llamacpp => actions.push(ControlAction::Update),
    }
    actions
}

/// One line in the style of `systemctl status`: `active (running)`,
/// `failed (Result: exit-code, status=3)`, `not-found (no such unit)`.
pub fn status_text(props: &UnitProperties) -> String {
    let load = props.get("LoadState").unwrap_or("unknown");
    let active = props.get("ActiveState").unwrap_or("unknown");
    let sub = props.get("SubState").unwrap_or("unknown");
    match load {
        "loaded" => {}
        "not-found" => return "not-found (no such unit)".to_owned(),
        other => return format!("{other} ({active})"),
    }
    if active == "failed" {
        let result = props.get("Result").unwrap_or("unknown");
        return match props
            .get("ExecMainStatus")
            .filter(|s| *s != "0" && !s.is_empty())
        {
            Some(status) => format!("failed (Result: {result}, status={status})"),
            None => format!("failed (Result: {result})"),
        };
    }
    format!("{active} ({sub})")
}

/// The `system.localBackends` entry of a backend whose unit answered.
pub fn backend_from_properties(
    config: &LocalBackendConfig,
    props: &UnitProperties,
) -> LocalBackendStatus {
    let load_state = props.get("LoadState").unwrap_or("unknown").to_owned();
    let active_state = props.get("ActiveState").unwrap_or("unknown").to_owned();
    let sub_state = props.get("SubState").unwrap_or("unknown").to_owned();
    let available_actions = available_actions(config.provider, &load_state, &active_state);
    LocalBackendStatus {
        id: config.id().to_owned(),
        provider: config.provider.as_str().to_owned(),
        name: config.name().to_owned(),
        unit: config.unit().to_owned(),
        configured: true,
        status_text: status_text(props),
        pid: props.main_pid().map(u64::from),
        unit_file_state: props.non_empty("UnitFileState"),
        description: props.non_empty("Description"),
        result: props.non_empty("Result"),
        load_state,
        active_state,
        sub_state,
        available_actions,
        error: None,
    }
}

/// The entry of a backend whose status could not be read: still listed, with the reason.
pub fn unavailable_backend(config: &LocalBackendConfig, error: String) -> LocalBackendStatus {
    let first_line = error.lines().next().unwrap_or_default();
    LocalBackendStatus {
        id: config.id().to_owned(),
        provider: config.provider.as_str().to_owned(),
        name: config.name().to_owned(),
        unit: config.unit().to_owned(),
        configured: true,
        load_state: "unknown".to_owned(),
        active_state: UNAVAILABLE.to_owned(),
        sub_state: "unknown".to_owned(),
        unit_file_state: None,
        description: None,
        pid: None,
        result: None,
        status_text: format!("unavailable: {first_line}"),
        available_actions: Vec::new(),
        error: Some(error),
    }
}

/// The short state reported after a control action.
pub fn short_state(backend: &LocalBackendStatus) -> LocalBackendState {
    LocalBackendState {
        id: backend.id.clone(),
        active_state: backend.active_state.clone(),
        sub_state: backend.sub_state.clone(),
        status_text: backend.status_text.clone(),
    }
}
