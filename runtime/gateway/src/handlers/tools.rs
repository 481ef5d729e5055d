//! `tools.list` and `tools.execute` (direct execution, under the same policy as the agent's).

use flynn_protocol::ErrorCode;
use flynn_protocol::ToolsMethods;
use flynn_protocol::types::{
    ToolDescriptor, ToolsExecuteParams, ToolsExecuteResult, ToolsListParams, ToolsListResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use flynn_tools::{ToolContext, ToolError};

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

/// The tools the caller's turns may use: every tool for a caller holding `operator`, none
/// otherwise (decision scopes).
pub fn list(
    gw: &Gateway,
    call: Call<ConnectionState>,
    // A given `sessionId` met the spec's `SessionId` when the params were decoded; the list
    // does not depend on the session.
    _: ToolsListParams,
) -> Result<ToolsListResult, RpcError> {
    let may_use_tools = call
        .connection
        .identity
        .scopes()
        .contains(flynn_protocol::types::Scope::Operator);
    let tools = gw
        .tools()
        .list()
        .into_iter()
        .filter(|_| may_use_tools)
        .map(|t| ToolDescriptor {
            name: t.name,
            description: t.description,
            input_schema: match t.input_schema {
                serde_json::Value::Object(m) => m,
                _ => Default::default(),
            },
        })
        .collect();
    Ok(ToolsListResult { tools })
}

pub async fn execute(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: ToolsExecuteParams,
) -> Result<ToolsExecuteResult, RpcError> {
    // A given id met the spec's `SessionId` when the params were decoded.
    let session_id = p
        .session_id
        .map_or_else(|| call.connection.session_id(), String::from);
    // Cancelled if the gateway shuts down; a direct call has no run to cancel it otherwise.
    let cancel = gw.shutdown.child_token();
    let cx = ToolContext::new(gw.workspace(), session_id, cancel);
    match gw
        .tools()
        .execute(&p.tool, serde_json::Value::Object(p.args), cx)
        .await
    {
        Ok(out) => Ok(ToolsExecuteResult {
            success: out.success,
            output: out.output,
            error: out.error,
        }),
        Err(ToolError::NotFound { name, available }) => Err(RpcError::new(
            ErrorCode::ToolNotFound,
            format!("unknown tool `{name}`; available: {}", available.join(", ")),
        )
        .with_data(serde_json::json!({ "tool": name }))),
        Err(ToolError::InvalidArgs { path, message, .. }) => Err(RpcError::invalid(
            format!(
                "params.args{}",
                if path.is_empty() || path == "." {
                    String::new()
                } else {
                    format!(".{path}")
                }
            ),
            format!("invalid tool arguments: {message}"),
        )),
        // The session is at tools.max_concurrent_runs_per_session and nothing was started. The
        // spec has no busy code for tools.execute (AgentBusy is the queue's, with data.queue),
        // so this is -2 on the session, like canvas.max_artifacts_per_session: an error reply a
        // client can tell apart from a command that ran and failed.
        Err(busy @ ToolError::Busy { .. }) => {
            Err(RpcError::invalid("params.sessionId", busy.to_string()))
        }
        Err(other) => Ok(ToolsExecuteResult {
            success: false,
            output: String::new(),
            error: Some(other.to_string()),
        }),
    }
}

impl ToolsMethods for Gateway {
    fn tools_list(
        &self,
        call: Call<ConnectionState>,
        params: ToolsListParams,
    ) -> Reply<'_, ToolsListResult> {
        Reply::ready(list(self, call, params))
    }
    fn tools_execute(
        &self,
        call: Call<ConnectionState>,
        params: ToolsExecuteParams,
    ) -> Reply<'_, ToolsExecuteResult> {
        Reply::later(execute(self, call, params))
    }
}
