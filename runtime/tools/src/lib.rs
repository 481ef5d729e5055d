//! Tools of the Flynn gateway: a registry of tools with JSON Schema inputs, `shell.exec` with an
//! allow/deny policy, timeout, output cap and process-group kill, and file tools confined to the
//! workspace folder.
//!
//! The gateway builds one [`ToolRegistry`] from the `[tools]` section of its configuration
//! ([`ToolsConfig`]) and uses it for both the agent loop and the `tools.list` /
//! `tools.execute` methods, so both obey the same policy. Each call gets a [`ToolContext`]
//! carrying the workspace folder and a cancellation token; cancelling it kills every process the
//! call started.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flynn_tools::ToolError> {
//! use flynn_tools::{CancellationToken, ToolContext, ToolRegistry, ToolsConfig};
//!
//! let config = ToolsConfig::default();
//! let registry = ToolRegistry::with_defaults(&config);
//! let cx = ToolContext::new("/srv/flynn/workspace", "telegram:123456", CancellationToken::new());
//! let out = registry
//!     .execute("shell.exec", serde_json::json!({"command": "echo 'Hello'"}), cx)
//!     .await?;
//! assert_eq!(out.output, "Hello\n");
//! # Ok(()) }
//! ```

mod config;
mod error;
mod files;
mod glob;
mod limits;
mod policy;
mod process;
mod registry;
mod shell;
mod tool;
mod workspace;

pub use config::{
    DEFAULT_MAX_CONCURRENT_RUNS_PER_SESSION, DEFAULT_PASS_ENV, EnvFilter, FilesConfig, ShellConfig,
    ToolsConfig,
};
pub use error::ToolError;
pub use files::{
    FILE_LIST, FILE_READ, FILE_WRITE, FileList, FileListInput, FileRead, FileReadInput, FileWrite,
    FileWriteInput,
};
pub use registry::ToolRegistry;
pub use shell::{SHELL_EXEC, ShellExec, ShellExecInput};
pub use tokio_util::sync::CancellationToken;
pub use tool::{
    Tool, ToolContext, ToolDescriptor, ToolFuture, ToolOutput, TypedTool, decode_args, input_schema,
};
