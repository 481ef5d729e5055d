//! What a tool is: a name, a description, a JSON Schema for its input derived from a Rust type,
//! and an async `execute`. [`TypedTool`] is the convenient way to write one: the schema and the
//! argument decoding both come from the same `Input` type, so they cannot drift apart.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::ToolError;

/// A tool as `tools.list` shows it and as a model provider receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDescriptor {
    pub name: String,
    pub description: String,
    /// JSON Schema (draft-07, subschemas inlined, no `$schema` key) of the `args` object.
    pub input_schema: serde_json::Value,
}

/// Result of a tool call. Serialises to the `tools.execute` result and the `tool_end` event's
/// `result`: `error` is left out when there is none and `truncated` when false, so `echo 'Hello'`
/// gives exactly `{"success":true,"output":"Hello\n"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutput {
    /// The work succeeded (for `shell.exec`: exit code 0 within the timeout).
    pub success: bool,
    /// What the tool produced (for `shell.exec`: stdout and stderr combined).
    pub output: String,
    /// Why the work failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `output` was cut at a configured limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl ToolOutput {
    /// A successful result.
    pub fn ok(output: impl Into<String>) -> Self {
        Self {
            success: true,
            output: output.into(),
            error: None,
            truncated: false,
        }
    }

    /// A failed result with no output.
    pub fn failure(error: impl Into<String>) -> Self {
        Self {
            success: false,
            output: String::new(),
            error: Some(error.into()),
            truncated: false,
        }
    }

    /// The result an agent loop feeds back to the model for a call that could not be carried
    /// out, so the model can read the reason and correct itself.
    pub fn from_error(error: &ToolError) -> Self {
        Self::failure(error.to_string())
    }

    /// One text for a model's tool-result message: the output, a note when it was truncated,
    /// and the error when there is one.
    pub fn model_text(&self) -> String {
        let mut text = self.output.clone();
        if self.truncated {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("[output truncated]");
        }
        if let Some(error) = &self.error {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("[error] ");
            text.push_str(error);
        }
        text
    }
}

/// Per-call context: where the call may work, and the token that aborts it.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// Workspace folder (created when missing). File tools are confined to it and `shell.exec`
    /// runs inside it.
    pub workspace: PathBuf,
    /// Cancelling it kills whatever the call started and makes it return
    /// [`ToolError::Cancelled`].
    pub cancel: CancellationToken,
    /// Session the call belongs to (for logs).
    pub session_id: String,
}

impl ToolContext {
    pub fn new(
        workspace: impl Into<PathBuf>,
        session_id: impl Into<String>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            workspace: workspace.into(),
            cancel,
            session_id: session_id.into(),
        }
    }
}

/// Boxed future returned by [`Tool::execute`].
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// A tool in object-safe form, as the registry holds it. Implement [`TypedTool`] instead unless
/// the input cannot be a Rust type.
pub trait Tool: Send + Sync {
    fn descriptor(&self) -> ToolDescriptor;
    fn execute(&self, args: serde_json::Value, cx: ToolContext) -> ToolFuture<'_>;
}

/// A tool whose input is a Rust type: its schema is derived from `Input` and `args` are decoded
/// into `Input` before `run` sees them, with [`ToolError::InvalidArgs`] naming the field path on
/// a mismatch. Give `Input` `#[serde(rename_all = "camelCase", deny_unknown_fields)]`.
pub trait TypedTool: Send + Sync {
    type Input: DeserializeOwned + JsonSchema + Send;
    /// Name of the tool, for example `shell.exec`.
    fn name(&self) -> &str;
    /// What the tool does, written for a model deciding whether to call it.
    fn description(&self) -> String;
    fn run(
        &self,
        input: Self::Input,
        cx: ToolContext,
    ) -> impl Future<Output = Result<ToolOutput, ToolError>> + Send;
}

impl<T: TypedTool> Tool for T {
    fn descriptor(&self) -> ToolDescriptor {
        ToolDescriptor {
            name: self.name().to_owned(),
            description: self.description(),
            input_schema: input_schema::<T::Input>(),
        }
    }

    fn execute(&self, args: serde_json::Value, cx: ToolContext) -> ToolFuture<'_> {
        Box::pin(async move {
            let input = decode_args::<T::Input>(self.name(), args)?;
            self.run(input, cx).await
        })
    }
}

/// JSON Schema of a tool input type: draft-07 (like the protocol spec), every subschema inlined
/// and no `$schema` key, which is the form model APIs accept for tool parameters.
pub fn input_schema<T: JsonSchema>() -> serde_json::Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// Decodes `args` (a JSON object) into `T`; on failure names the field path (`.` for the
/// object itself).
/// A missing `args` (`null`) counts as an empty object, so tools whose fields are all optional
/// can be called without arguments.
pub fn decode_args<T: DeserializeOwned>(
    tool: &str,
    args: serde_json::Value,
) -> Result<T, ToolError> {
    let args = match args {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        // Serde would also accept an array as positional struct fields; the inputs are objects.
        args @ serde_json::Value::Object(_) => args,
        other => {
            return Err(ToolError::InvalidArgs {
                tool: tool.to_owned(),
                path: ".".to_owned(),
                message: format!("expected an object of named arguments, got {other}"),
            });
        }
    };
    serde_path_to_error::deserialize(args).map_err(|error| {
        let path = error.path().to_string();
        ToolError::InvalidArgs {
            tool: tool.to_owned(),
            path,
            message: error.into_inner().to_string(),
        }
    })
}
