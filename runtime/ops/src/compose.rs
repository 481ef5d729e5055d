//! Reading Flynn's `docker-compose.yml` to find its dependencies.
//!
//! Every service of the file is a dependency, including services that only run under a profile
//! (`profiles: [...]`), except Flynn's own service (`[ops.docker].self_service`).
//!
//! **Display name**: the service's `x-flynn-name` key, else its `flynn.name` label, else the
//! built-in table (`whisper-server` → "Whisper (whisper.cpp)", `brave-search` → "Brave Search",
//! `searxng` → "SearXNG"), else the service name.
//!
//! **Id** (used by `system.dockerDependencyControl` and in `docker:<id>` source ids): the
//! service's `x-flynn-id` key, else its `flynn.id` label, else the service name with one
//! trailing `-server` removed (`whisper-server` → `whisper`, `brave-search` stays). An id that
//! is another service's name, or that an earlier service (in file order) already has, is
//! replaced by the service's own name, so ids stay unique.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::config::{is_plain_id, is_safe_argument};

/// One dependency found in the compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeService {
    /// Dependency id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Compose service name.
    pub service: String,
    /// Profiles the service belongs to (empty: always enabled).
    pub profiles: Vec<String>,
}

/// Why the compose file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeFileError {
    /// The file could not be read.
    #[error("cannot read the compose file {path}: {reason}; check [ops.docker].compose_file")]
    Read {
        /// The configured path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not a compose document.
    #[error("the compose file {path} is not valid: {reason}")]
    Invalid {
        /// The configured path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

const KNOWN_NAMES: [(&str, &str); 3] = [
    ("whisper-server", "Whisper (whisper.cpp)"),
    ("brave-search", "Brave Search"),
    ("searxng", "SearXNG"),
];

/// Reads and parses the compose file at `path`.
pub async fn load(
    path: &Path,
    self_service: &str,
) -> Result<Vec<ComposeService>, ComposeFileError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|err| ComposeFileError::Read {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
    parse(&text, self_service).map_err(|reason| ComposeFileError::Invalid {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses compose YAML; returns the dependencies in file order or what is wrong.
pub fn parse(text: &str, self_service: &str) -> Result<Vec<ComposeService>, String> {
    let mut document: Value = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    // Compose files often share settings with `<<: *defaults`; resolve those merge keys.
    document.apply_merge().map_err(|err| err.to_string())?;
    let services = match document.get("services") {
        Some(Value::Mapping(services)) => services,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(_) => return Err("`services` must be a mapping of service names".to_owned()),
    };
    let mut entries = Vec::new();
    for (key, body) in services {
        let Some(service) = key.as_str() else {
            return Err("a service name is not a string".to_owned());
        };
        if service == self_service {
            continue;
        }
        if !is_safe_argument(service) {
            tracing::warn!(service, "skipping compose service with an unusable name");
            continue;
        }
        entries.push((service, body.as_mapping()));
    }
    let names: BTreeSet<&str> = entries.iter().map(|(service, _)| *service).collect();
    let mut ids = BTreeSet::new();
    let mut found = Vec::with_capacity(entries.len());
    for (service, body) in entries {
        let name = extension(body, "x-flynn-name")
            .or_else(|| label(body, "flynn.name"))
            .or_else(|| {
                KNOWN_NAMES
                    .iter()
                    .find(|(known, _)| *known == service)
                    .map(|(_, name)| (*name).to_owned())
            })
            .unwrap_or_else(|| service.to_owned());
        let preferred = extension(body, "x-flynn-id")
            .or_else(|| label(body, "flynn.id"))
            .filter(|id| is_plain_id(id))
            .unwrap_or_else(|| default_id(service));
        let taken = ids.contains(&preferred)
            || (preferred != service && names.contains(preferred.as_str()));
        let id = if taken { service.to_owned() } else { preferred };
        ids.insert(id.clone());
        found.push(ComposeService {
            id,
            name,
            service: service.to_owned(),
            profiles: profiles(body),
        });
    }
    Ok(found)
}

/// The id rule without overrides: strip one trailing `-server`.
pub fn default_id(service: &str) -> String {
    match service.strip_suffix("-server") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => service.to_owned(),
    }
}

fn extension(body: Option<&Mapping>, key: &str) -> Option<String> {
    body?
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ToOwned::to_owned)
}

/// A label from either compose form: a mapping or a list of `key=value`.
fn label(body: Option<&Mapping>, key: &str) -> Option<String> {
    let value = match body?.get("labels")? {
        Value::Mapping(labels) => labels.get(key).and_then(scalar_string),
        Value::Sequence(labels) => labels.iter().filter_map(Value::as_str).find_map(|entry| {
            entry
                .split_once('=')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
        }),
        _ => None,
    }?;
    let value = value.trim().to_owned();
    (!value.is_empty()).then_some(value)
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn profiles(body: Option<&Mapping>) -> Vec<String> {
    body.and_then(|b| b.get("profiles"))
        .and_then(Value::as_sequence)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(ToOwned::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
