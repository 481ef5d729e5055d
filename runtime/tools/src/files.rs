//! `file.read`, `file.write` and `file.list`: file access confined to the workspace folder
//! (see [`crate::workspace`] for how paths are resolved).

use std::io::SeekFrom;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::fs::OpenOptions;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{FilesConfig, ToolContext, ToolError, ToolOutput, TypedTool, workspace};

pub const FILE_READ: &str = "file.read";
pub const FILE_WRITE: &str = "file.write";
pub const FILE_LIST: &str = "file.list";

/// Arguments of `file.read`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileReadInput {
    /// File path relative to the workspace.
    pub path: String,
    /// Byte offset to start reading at (default 0); use it to read a large file in pages.
    pub offset: Option<u64>,
    /// Most bytes to return (default and upper bound: the configured read limit).
    pub max_bytes: Option<u64>,
}

/// Arguments of `file.write`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileWriteInput {
    /// File path relative to the workspace; missing parent folders are created.
    pub path: String,
    /// Text to write.
    pub content: String,
    /// Append to the file instead of replacing its content.
    pub append: Option<bool>,
}

/// Arguments of `file.list`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileListInput {
    /// Folder relative to the workspace (default: the workspace itself).
    pub path: Option<String>,
}

/// `O_NOFOLLOW`: never follow a symlink put in place of the checked final component.
fn no_follow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

fn io_failure(action: &str, shown: &str, error: &std::io::Error) -> ToolOutput {
    let hint = match error.kind() {
        std::io::ErrorKind::NotFound => "; file.list shows what exists",
        std::io::ErrorKind::PermissionDenied => "; the gateway's user lacks permission",
        _ => "",
    };
    ToolOutput::failure(format!("cannot {action} `{shown}`: {error}{hint}"))
}

/// The `file.read` tool.
#[derive(Debug, Clone)]
pub struct FileRead {
    config: FilesConfig,
}

impl FileRead {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }
}

impl TypedTool for FileRead {
    type Input = FileReadInput;

    fn name(&self) -> &str {
        FILE_READ
    }

    fn description(&self) -> String {
        format!(
            "Read a text file in the workspace. Returns at most {} bytes from `offset`; when more \
             remains the result is marked truncated and the next page starts at offset + the \
             byte length of this output.",
            self.config.max_read_bytes
        )
    }

    async fn run(&self, input: FileReadInput, cx: ToolContext) -> Result<ToolOutput, ToolError> {
        let root = workspace::ensure_root(FILE_READ, &cx.workspace).await?;
        let path = workspace::resolve(FILE_READ, &root, &input.path, "path").await?;
        let shown = workspace::display(&root, &path);
        let limit = input
            .max_bytes
            .unwrap_or(self.config.max_read_bytes)
            .min(self.config.max_read_bytes);
        let offset = input.offset.unwrap_or(0);
        match read_range(&path, offset, limit).await {
            Ok(Err(message)) => Ok(ToolOutput::failure(format!("`{shown}` {message}"))),
            Ok(Ok((bytes, more))) => Ok(ToolOutput {
                success: true,
                output: crate::process::into_text(bytes, more),
                error: None,
                truncated: more,
            }),
            Err(error) => Ok(io_failure("read", &shown, &error)),
        }
    }
}

/// Reads up to `limit` bytes at `offset`; also says whether the file goes on after them.
/// The inner `Err` is a failure of the request (not a regular file).
async fn read_range(
    path: &Path,
    offset: u64,
    limit: u64,
) -> std::io::Result<Result<(Vec<u8>, bool), String>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(path)
        .await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Ok(Err(if meta.is_dir() {
            "is a folder; use file.list to see its entries".to_owned()
        } else {
            "is not a regular file".to_owned()
        }));
    }
    file.seek(SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    (&mut file).take(limit).read_to_end(&mut bytes).await?;
    // One more byte tells whether the file continues, without trusting a size that may change.
    let mut probe = [0u8; 1];
    let more = file.read(&mut probe).await? > 0;
    Ok(Ok((bytes, more)))
}

/// The `file.write` tool.
#[derive(Debug, Clone)]
pub struct FileWrite {
    config: FilesConfig,
}

impl FileWrite {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }
}

impl TypedTool for FileWrite {
    type Input = FileWriteInput;

    fn name(&self) -> &str {
        FILE_WRITE
    }

    fn description(&self) -> String {
        format!(
            "Write text to a file in the workspace, replacing it (or appending with `append`). \
             Missing parent folders are created. At most {} bytes per call.",
            self.config.max_write_bytes
        )
    }

    async fn run(&self, input: FileWriteInput, cx: ToolContext) -> Result<ToolOutput, ToolError> {
        let size = input.content.len() as u64;
        if size > self.config.max_write_bytes {
            return Err(ToolError::invalid(
                FILE_WRITE,
                "content",
                format!(
                    "is {size} bytes, over the limit of {} (tools.files.max_write_bytes); write it in \
                     parts with `append`",
                    self.config.max_write_bytes
                ),
            ));
        }
        let root = workspace::ensure_root(FILE_WRITE, &cx.workspace).await?;
        let path = workspace::resolve(FILE_WRITE, &root, &input.path, "path").await?;
        let shown = workspace::display(&root, &path);
        if path == root {
            return Ok(ToolOutput::failure(
                "`.` is the workspace folder itself; give a file path",
            ));
        }
        let append = input.append.unwrap_or(false);
        if let Some(parent) = path.parent()
            && let Err(error) = tokio::fs::create_dir_all(parent).await
        {
            return Ok(io_failure("create the folders of", &shown, &error));
        }
        let result = async {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .append(append)
                .truncate(!append)
                .custom_flags(no_follow())
                .open(&path)
                .await?;
            file.write_all(input.content.as_bytes()).await?;
            file.flush().await
        }
        .await;
        match result {
            Ok(()) => {
                let verb = if append { "appended" } else { "wrote" };
                Ok(ToolOutput::ok(format!("{verb} {size} bytes to {shown}")))
            }
            Err(error) => Ok(io_failure("write", &shown, &error)),
        }
    }
}

/// The `file.list` tool.
#[derive(Debug, Clone)]
pub struct FileList {
    config: FilesConfig,
}

impl FileList {
    pub fn new(config: &FilesConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }
}

impl TypedTool for FileList {
    type Input = FileListInput;

    fn name(&self) -> &str {
        FILE_LIST
    }

    fn description(&self) -> String {
        format!(
            "List a folder of the workspace, one entry per line sorted by name: folders end with \
             `/`, symlinks with `@`, files show their size in bytes after a tab. At most {} entries.",
            self.config.max_list_entries
        )
    }

    async fn run(&self, input: FileListInput, cx: ToolContext) -> Result<ToolOutput, ToolError> {
        let root = workspace::ensure_root(FILE_LIST, &cx.workspace).await?;
        let relative = input.path.as_deref().unwrap_or(".");
        let path = workspace::resolve(FILE_LIST, &root, relative, "path").await?;
        let shown = workspace::display(&root, &path);
        let mut dir = match tokio::fs::read_dir(&path).await {
            Ok(dir) => dir,
            Err(error) if error.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                return Ok(ToolOutput::failure(format!(
                    "`{shown}` is not a folder; use file.read to read it"
                )));
            }
            Err(error) => return Ok(io_failure("list", &shown, &error)),
        };
        let mut entries = Vec::new();
        loop {
            match dir.next_entry().await {
                Ok(Some(entry)) => {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let line = match entry.file_type().await {
                        Ok(kind) if kind.is_dir() => format!("{name}/"),
                        Ok(kind) if kind.is_symlink() => format!("{name}@"),
                        Ok(_) => match entry.metadata().await {
                            Ok(meta) => format!("{name}\t{}", meta.len()),
                            Err(_) => name.clone(),
                        },
                        Err(_) => name.clone(),
                    };
                    entries.push((name, line));
                }
                Ok(None) => break,
                Err(error) => return Ok(io_failure("list", &shown, &error)),
            }
        }
        entries.sort();
        let truncated = entries.len() > self.config.max_list_entries;
        entries.truncate(self.config.max_list_entries);
        let mut output = String::new();
        for (_, line) in entries {
            output.push_str(&line);
            output.push('\n');
        }
        Ok(ToolOutput {
            success: true,
            output,
            error: None,
            truncated,
        })
    }
}
