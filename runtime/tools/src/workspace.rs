//! Confinement to the workspace folder. A relative path is normalised lexically (a `..` that
//! would climb above the workspace is refused), then the longest part of it that exists is
//! canonicalised (resolving symlinks) and must still be inside the canonical workspace. The part
//! that does not exist yet can only contain plain names, so creating it cannot leave the
//! workspace either.
//!
//! Limitation: this is checked before the file is opened. A process that swaps a checked folder
//! for a symlink in between (for example a background job started through `shell.exec`) could
//! race it; the final component is opened with `O_NOFOLLOW` to narrow that window.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::ToolError;

/// Creates the workspace when missing and returns its canonical path.
pub(crate) async fn ensure_root(tool: &str, workspace: &Path) -> Result<PathBuf, ToolError> {
    tokio::fs::create_dir_all(workspace).await.map_err(|error| {
        ToolError::failed(
            tool,
            format!(
                "cannot create the workspace folder {}: {error}; check tools.workspace in the configuration",
                workspace.display()
            ),
        )
    })?;
    tokio::fs::canonicalize(workspace).await.map_err(|error| {
        ToolError::failed(
            tool,
            format!(
                "cannot resolve the workspace folder {}: {error}",
                workspace.display()
            ),
        )
    })
}

/// Resolves `relative` (a tool argument named `field`) inside the canonical workspace `root`.
/// Returns the absolute path to work on: canonical for the part that exists.
pub(crate) async fn resolve(
    tool: &str,
    root: &Path,
    relative: &str,
    field: &str,
) -> Result<PathBuf, ToolError> {
    let denied = |why: &str| {
        ToolError::denied(
            tool,
            format!(
                "`{field}` = `{relative}` {why}; give a path relative to the workspace folder that stays inside it"
            ),
        )
    };
    if relative.contains('\0') {
        return Err(ToolError::invalid(
            tool,
            field,
            "the path contains a NUL character",
        ));
    }
    let path = Path::new(relative);
    if path.is_absolute() {
        return Err(denied("is an absolute path"));
    }
    let mut normal: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => normal.push(name),
            Component::ParentDir => {
                if normal.pop().is_none() {
                    return Err(denied("climbs out of the workspace with `..`"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(denied("is an absolute path"));
            }
        }
    }

    // Find the longest existing prefix; everything after it is a tail of plain names.
    let mut existing = normal.len();
    let canonical = loop {
        let candidate: PathBuf = normal[..existing]
            .iter()
            .fold(root.to_path_buf(), |p, n| p.join(n));
        match tokio::fs::canonicalize(&candidate).await {
            Ok(canonical) => break canonical,
            // A missing component, or a file used as a folder: the rest is checked as names and
            // the operation itself then fails with the precise error.
            Err(error)
                if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
                    && existing > 0 =>
            {
                // A dangling symlink exists but cannot be canonicalised: refuse it, since
                // creating "through" it would create its target wherever that is.
                if tokio::fs::symlink_metadata(&candidate).await.is_ok() {
                    return Err(denied(
                        "is or passes through a symlink whose target does not exist",
                    ));
                }
                existing -= 1;
            }
            Err(error) => {
                return Err(ToolError::failed(
                    tool,
                    format!("cannot resolve `{relative}`: {error}"),
                ));
            }
        }
    };
    if !canonical.starts_with(root) {
        return Err(denied(
            "resolves (through a symlink) to a place outside the workspace",
        ));
    }
    Ok(normal[existing..].iter().fold(canonical, |p, n| p.join(n)))
}

/// The path shown back to the caller: relative to the workspace, `.` for the workspace itself.
pub(crate) fn display(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}
