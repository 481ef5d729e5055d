//! `coverage-exceptions.json`: what may stay uncovered, each with its reason: error codes the
//! gateway cannot produce, and `x-http` routes no transcript can reach (say why).

use std::path::Path;

use serde::Deserialize;

/// Coverage that is allowed to be missing, with the reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default)]
    pub codes: Vec<CodeException>,
    /// `x-http` routes allowed to be uncovered.
    #[serde(default)]
    pub routes: Vec<RouteException>,
}

/// An `x-http` route (`method` and `path` exactly as declared) allowed to be uncovered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteException {
    pub method: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeException {
    pub code: i64,
    pub reason: String,
}

/// Why the exceptions file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the coverage exceptions {path}: {message}")]
pub struct ExceptionsError {
    pub path: String,
    pub message: String,
}

impl Exceptions {
    pub fn load(path: &Path) -> Result<Self, ExceptionsError> {
        let err = |message: String| ExceptionsError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let exceptions: Exceptions = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        if let Some(empty) = exceptions.codes.iter().find(|c| c.reason.trim().is_empty()) {
            return Err(err(format!(
                "the exception for code {} needs a reason",
                empty.code
            )));
        }
        if let Some(empty) = exceptions
            .routes
            .iter()
            .find(|r| r.reason.trim().is_empty())
        {
            return Err(err(format!(
                "the exception for route {} {} needs a reason",
                empty.method, empty.path
            )));
        }
        Ok(exceptions)
    }

    pub(crate) fn reason(&self, code: i64) -> Option<&str> {
        self.codes
            .iter()
            .find(|c| c.code == code)
            .map(|c| c.reason.as_str())
    }

    /// Why route `method path` may be uncovered, if it may.
    pub(crate) fn route_reason(&self, method: &str, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .map(|r| r.reason.as_str())
    }
}
