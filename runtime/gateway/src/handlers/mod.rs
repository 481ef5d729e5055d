//! The protocol's methods, one module per group. `impl Handler for Gateway` is only routing; the
//! work is in the group modules.

mod agent;
mod canvas;
mod config_methods;
mod insights;
mod nodes;
mod operations;
mod pairing;
mod sessions;
mod system;
mod tools;

use flynn_protocol::Handler;
use flynn_protocol::types;
use flynn_protocol::wire::Call;
use flynn_protocol::wire::RpcError;

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

pub use nodes::{NodeRegistry, on_disconnect};

/// Maps a storage failure to an internal error that says what failed.
pub(crate) fn store_error(e: flynn_store::StoreError) -> RpcError {
    tracing::error!(error = %e, "store failure");
    RpcError::internal(format!(
        "storage failed: {e}; check the gateway's data directory and logs"
    ))
}

impl Handler for Gateway {
    type Connection = ConnectionState;

    async fn system_info(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemInfoParams,
    ) -> Result<types::SystemInfoResult, RpcError> {
        system::info(self, call, params).await
    }
    async fn system_disconnect(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDisconnectParams,
    ) -> Result<types::SystemDisconnectResult, RpcError> {
        system::disconnect(self, call, params).await
    }
    async fn system_presence(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemPresenceParams,
    ) -> Result<types::SystemPresenceResult, RpcError> {
        insights::presence(self, call, params).await
    }
    async fn system_session_analytics(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemSessionAnalyticsParams,
    ) -> Result<types::SystemSessionAnalyticsResult, RpcError> {
        insights::session_analytics(self, call, params).await
    }
    async fn system_context_usage(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemContextUsageParams,
    ) -> Result<types::SystemContextUsageResult, RpcError> {
        agent::context_usage(self, call, params).await
    }
    async fn system_local_backends(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocalBackendsParams,
    ) -> Result<types::SystemLocalBackendsResult, RpcError> {
        operations::local_backends(self, call, params).await
    }
    async fn system_docker_dependencies(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDockerDependenciesParams,
    ) -> Result<types::SystemDockerDependenciesResult, RpcError> {
        operations::docker_dependencies(self, call, params).await
    }
    async fn system_docker_dependency_control(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDockerDependencyControlParams,
    ) -> Result<types::SystemDockerDependencyControlResult, RpcError> {
        operations::docker_dependency_control(self, call, params).await
    }
    async fn system_local_backend_control(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocalBackendControlParams,
    ) -> Result<types::SystemLocalBackendControlResult, RpcError> {
        operations::local_backend_control(self, call, params).await
    }
    async fn system_observability_sources(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemObservabilitySourcesParams,
    ) -> Result<types::SystemObservabilitySourcesResult, RpcError> {
        operations::observability_sources(self, call, params).await
    }
    async fn system_observability_series(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemObservabilitySeriesParams,
    ) -> Result<types::SystemObservabilitySeriesResult, RpcError> {
        operations::observability_series(self, call, params).await
    }
    async fn system_service_logs(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemServiceLogsParams,
    ) -> Result<types::SystemServiceLogsResult, RpcError> {
        operations::service_logs(self, call, params).await
    }
    async fn sessions_list(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsListParams,
    ) -> Result<types::SessionsListResult, RpcError> {
        sessions::list(self, call, params).await
    }
    async fn sessions_get(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsGetParams,
    ) -> Result<types::SessionsGetResult, RpcError> {
        sessions::get(self, call, params).await
    }
    async fn sessions_create(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsCreateParams,
    ) -> Result<types::SessionsCreateResult, RpcError> {
        sessions::create(self, call, params).await
    }
    async fn sessions_delete(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsDeleteParams,
    ) -> Result<types::SessionsDeleteResult, RpcError> {
        sessions::delete(self, call, params).await
    }
    async fn agent_send(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentSendParams,
    ) -> Result<types::AgentSendResult, RpcError> {
        agent::send(self, call, params).await
    }
    async fn agent_cancel(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentCancelParams,
    ) -> Result<types::AgentCancelResult, RpcError> {
        agent::cancel(self, call, params).await
    }
    async fn node_register(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeRegisterParams,
    ) -> Result<types::NodeRegisterResult, RpcError> {
        nodes::register(self, call, params).await
    }
    async fn node_capabilities_get(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeCapabilitiesGetParams,
    ) -> Result<types::NodeCapabilitiesGetResult, RpcError> {
        nodes::capabilities_get(self, call, params).await
    }
    async fn node_location_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeLocationSetParams,
    ) -> Result<types::NodeLocationSetResult, RpcError> {
        nodes::location_set(self, call, params).await
    }
    async fn node_location_get(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeLocationGetParams,
    ) -> Result<types::NodeLocationGetResult, RpcError> {
        nodes::location_get(self, call, params).await
    }
    async fn node_status_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeStatusSetParams,
    ) -> Result<types::NodeStatusSetResult, RpcError> {
        nodes::status_set(self, call, params).await
    }
    async fn node_push_token_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodePushTokenSetParams,
    ) -> Result<types::NodePushTokenSetResult, RpcError> {
        nodes::push_token_set(self, call, params).await
    }
    async fn system_capabilities(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemCapabilitiesParams,
    ) -> Result<types::SystemCapabilitiesResult, RpcError> {
        nodes::capabilities(self, call, params).await
    }
    async fn system_location(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocationParams,
    ) -> Result<types::SystemLocationResult, RpcError> {
        nodes::location(self, call, params).await
    }
    async fn system_nodes(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemNodesParams,
    ) -> Result<types::SystemNodesResult, RpcError> {
        nodes::nodes(self, call, params).await
    }
    async fn canvas_put(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasPutParams,
    ) -> Result<types::CanvasPutResult, RpcError> {
        canvas::put(self, call, params).await
    }
    async fn canvas_get(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasGetParams,
    ) -> Result<types::CanvasGetResult, RpcError> {
        canvas::get(self, call, params).await
    }
    async fn canvas_list(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasListParams,
    ) -> Result<types::CanvasListResult, RpcError> {
        canvas::list(self, call, params).await
    }
    async fn canvas_delete(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasDeleteParams,
    ) -> Result<types::CanvasDeleteResult, RpcError> {
        canvas::delete(self, call, params).await
    }
    async fn canvas_clear(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasClearParams,
    ) -> Result<types::CanvasClearResult, RpcError> {
        canvas::clear(self, call, params).await
    }
    async fn agent_set_tool_use_callback(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentSetToolUseCallbackParams,
    ) -> Result<types::AgentSetToolUseCallbackResult, RpcError> {
        agent::set_tool_use_callback(self, call, params).await
    }
    async fn tools_list(
        &self,
        call: Call<ConnectionState>,
        params: types::ToolsListParams,
    ) -> Result<types::ToolsListResult, RpcError> {
        tools::list(self, call, params).await
    }
    async fn tools_execute(
        &self,
        call: Call<ConnectionState>,
        params: types::ToolsExecuteParams,
    ) -> Result<types::ToolsExecuteResult, RpcError> {
        tools::execute(self, call, params).await
    }
    async fn config_get(
        &self,
        call: Call<ConnectionState>,
        params: types::ConfigGetParams,
    ) -> Result<types::ConfigGetResult, RpcError> {
        config_methods::get(self, call, params).await
    }
    async fn config_reload(
        &self,
        call: Call<ConnectionState>,
        params: types::ConfigReloadParams,
    ) -> Result<types::ConfigReloadResult, RpcError> {
        config_methods::reload(self, call, params).await
    }
    async fn pairing_generate(
        &self,
        call: Call<ConnectionState>,
        params: types::PairingGenerateParams,
    ) -> Result<types::PairingGenerateResult, RpcError> {
        pairing::generate(self, call, params).await
    }
    async fn pairing_list(
        &self,
        call: Call<ConnectionState>,
        params: types::PairingListParams,
    ) -> Result<types::PairingListResult, RpcError> {
        pairing::list(self, call, params).await
    }
    async fn agent_approve_tool(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentApproveToolParams,
    ) -> Result<types::AgentApproveToolResult, RpcError> {
        agent::approve_tool(self, call, params).await
    }
    async fn rpc_discover(
        &self,
        call: Call<ConnectionState>,
        params: types::RpcDiscoverParams,
    ) -> Result<types::RpcDiscoverResult, RpcError> {
        system::discover(self, call, params).await
    }
}
