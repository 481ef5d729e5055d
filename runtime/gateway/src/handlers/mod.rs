//! The protocol's methods, one module per group. `impl Handler for Gateway` is only routing; the
//! work is in the group modules. Methods that answer from memory are plain functions routed with
//! `Reply::ready` (no future, no allocation per call); the others are `async` and routed with
//! `Reply::later`.

mod agent;
mod canvas;
mod config_methods;
mod errors;
mod insights;
mod nodes;
mod operations;
pub(crate) mod pairing;
pub(crate) mod sessions;
mod system;
mod tools;

use flynn_protocol::Handler;
use flynn_protocol::types;
use flynn_protocol::wire::Call;
use flynn_protocol::wire::Reply;

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

/// In a module of its own so that the group modules (`super::store_error`) do not reach this
/// routing module, which reaches them all.
pub(crate) use errors::store_error;

impl Handler for Gateway {
    type Connection = ConnectionState;

    fn granted_scopes(&self, connection: &ConnectionState) -> flynn_protocol::Scopes {
        connection.identity.scopes()
    }

    fn session_allowed(&self, connection: &ConnectionState, session_id: &str) -> bool {
        connection.identity.session_allowed(session_id) || connection.owns_session(session_id)
    }

    fn system_info(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemInfoParams,
    ) -> Reply<'_, types::SystemInfoResult> {
        Reply::ready(system::info(self, call, params))
    }
    fn system_disconnect(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDisconnectParams,
    ) -> Reply<'_, types::SystemDisconnectResult> {
        Reply::ready(system::disconnect(self, call, params))
    }
    fn system_presence(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemPresenceParams,
    ) -> Reply<'_, types::SystemPresenceResult> {
        Reply::later(insights::presence(self, call, params))
    }
    fn system_session_analytics(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemSessionAnalyticsParams,
    ) -> Reply<'_, types::SystemSessionAnalyticsResult> {
        Reply::later(insights::session_analytics(self, call, params))
    }
    fn system_context_usage(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemContextUsageParams,
    ) -> Reply<'_, types::SystemContextUsageResult> {
        Reply::later(agent::context_usage(self, call, params))
    }
    fn system_local_backends(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocalBackendsParams,
    ) -> Reply<'_, types::SystemLocalBackendsResult> {
        Reply::later(operations::local_backends(self, call, params))
    }
    fn system_docker_dependencies(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDockerDependenciesParams,
    ) -> Reply<'_, types::SystemDockerDependenciesResult> {
        Reply::later(operations::docker_dependencies(self, call, params))
    }
    fn system_docker_dependency_control(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemDockerDependencyControlParams,
    ) -> Reply<'_, types::SystemDockerDependencyControlResult> {
        Reply::later(operations::docker_dependency_control(self, call, params))
    }
    fn system_local_backend_control(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocalBackendControlParams,
    ) -> Reply<'_, types::SystemLocalBackendControlResult> {
        Reply::later(operations::local_backend_control(self, call, params))
    }
    fn system_observability_sources(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemObservabilitySourcesParams,
    ) -> Reply<'_, types::SystemObservabilitySourcesResult> {
        Reply::later(operations::observability_sources(self, call, params))
    }
    fn system_observability_series(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemObservabilitySeriesParams,
    ) -> Reply<'_, types::SystemObservabilitySeriesResult> {
        Reply::later(operations::observability_series(self, call, params))
    }
    fn system_service_logs(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemServiceLogsParams,
    ) -> Reply<'_, types::SystemServiceLogsResult> {
        Reply::later(operations::service_logs(self, call, params))
    }
    fn sessions_list(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsListParams,
    ) -> Reply<'_, types::SessionsListResult> {
        Reply::later(sessions::list(self, call, params))
    }
    fn sessions_get(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsGetParams,
    ) -> Reply<'_, types::SessionsGetResult> {
        Reply::later(sessions::get(self, call, params))
    }
    fn sessions_create(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsCreateParams,
    ) -> Reply<'_, types::SessionsCreateResult> {
        Reply::later(sessions::create(self, call, params))
    }
    fn sessions_delete(
        &self,
        call: Call<ConnectionState>,
        params: types::SessionsDeleteParams,
    ) -> Reply<'_, types::SessionsDeleteResult> {
        Reply::later(sessions::delete(self, call, params))
    }
    fn agent_send(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentSendParams,
    ) -> Reply<'_, types::AgentSendResult> {
        Reply::later(agent::send(self, call, params))
    }
    fn agent_cancel(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentCancelParams,
    ) -> Reply<'_, types::AgentCancelResult> {
        Reply::later(agent::cancel(self, call, params))
    }
    fn agent_attach(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentAttachParams,
    ) -> Reply<'_, types::AgentAttachResult> {
        Reply::later(agent::attach(self, call, params))
    }
    fn node_register(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeRegisterParams,
    ) -> Reply<'_, types::NodeRegisterResult> {
        Reply::ready(nodes::register(self, call, params))
    }
    fn node_capabilities_get(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeCapabilitiesGetParams,
    ) -> Reply<'_, types::NodeCapabilitiesGetResult> {
        Reply::ready(nodes::capabilities_get(self, call, params))
    }
    fn node_location_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeLocationSetParams,
    ) -> Reply<'_, types::NodeLocationSetResult> {
        Reply::later(nodes::location_set(self, call, params))
    }
    fn node_location_get(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeLocationGetParams,
    ) -> Reply<'_, types::NodeLocationGetResult> {
        Reply::later(nodes::location_get(self, call, params))
    }
    fn node_status_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodeStatusSetParams,
    ) -> Reply<'_, types::NodeStatusSetResult> {
        Reply::later(nodes::status_set(self, call, params))
    }
    fn node_push_token_set(
        &self,
        call: Call<ConnectionState>,
        params: types::NodePushTokenSetParams,
    ) -> Reply<'_, types::NodePushTokenSetResult> {
        Reply::later(nodes::push_token_set(self, call, params))
    }
    fn system_capabilities(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemCapabilitiesParams,
    ) -> Reply<'_, types::SystemCapabilitiesResult> {
        Reply::ready(nodes::capabilities(self, call, params))
    }
    fn system_location(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemLocationParams,
    ) -> Reply<'_, types::SystemLocationResult> {
        Reply::later(nodes::location(self, call, params))
    }
    fn system_nodes(
        &self,
        call: Call<ConnectionState>,
        params: types::SystemNodesParams,
    ) -> Reply<'_, types::SystemNodesResult> {
        Reply::later(nodes::nodes(self, call, params))
    }
    fn canvas_put(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasPutParams,
    ) -> Reply<'_, types::CanvasPutResult> {
        Reply::later(canvas::put(self, call, params))
    }
    fn canvas_get(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasGetParams,
    ) -> Reply<'_, types::CanvasGetResult> {
        Reply::later(canvas::get(self, call, params))
    }
    fn canvas_list(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasListParams,
    ) -> Reply<'_, types::CanvasListResult> {
        Reply::later(canvas::list(self, call, params))
    }
    fn canvas_delete(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasDeleteParams,
    ) -> Reply<'_, types::CanvasDeleteResult> {
        Reply::later(canvas::delete(self, call, params))
    }
    fn canvas_clear(
        &self,
        call: Call<ConnectionState>,
        params: types::CanvasClearParams,
    ) -> Reply<'_, types::CanvasClearResult> {
        Reply::later(canvas::clear(self, call, params))
    }
    fn agent_set_tool_use_callback(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentSetToolUseCallbackParams,
    ) -> Reply<'_, types::AgentSetToolUseCallbackResult> {
        Reply::ready(agent::set_tool_use_callback(self, call, params))
    }
    fn tools_list(
        &self,
        call: Call<ConnectionState>,
        params: types::ToolsListParams,
    ) -> Reply<'_, types::ToolsListResult> {
        Reply::ready(tools::list(self, call, params))
    }
    fn tools_execute(
        &self,
        call: Call<ConnectionState>,
        params: types::ToolsExecuteParams,
    ) -> Reply<'_, types::ToolsExecuteResult> {
        Reply::later(tools::execute(self, call, params))
    }
    fn config_get(
        &self,
        call: Call<ConnectionState>,
        params: types::ConfigGetParams,
    ) -> Reply<'_, types::ConfigGetResult> {
        Reply::ready(config_methods::get(self, call, params))
    }
    fn config_reload(
        &self,
        call: Call<ConnectionState>,
        params: types::ConfigReloadParams,
    ) -> Reply<'_, types::ConfigReloadResult> {
        Reply::later(config_methods::reload(self, call, params))
    }
    fn pairing_generate(
        &self,
        call: Call<ConnectionState>,
        params: types::PairingGenerateParams,
    ) -> Reply<'_, types::PairingGenerateResult> {
        Reply::later(pairing::generate(self, call, params))
    }
    fn pairing_list(
        &self,
        call: Call<ConnectionState>,
        params: types::PairingListParams,
    ) -> Reply<'_, types::PairingListResult> {
        Reply::later(pairing::list(self, call, params))
    }
    fn agent_approve_tool(
        &self,
        call: Call<ConnectionState>,
        params: types::AgentApproveToolParams,
    ) -> Reply<'_, types::AgentApproveToolResult> {
        Reply::ready(agent::approve_tool(self, call, params))
    }
    fn rpc_discover(
        &self,
        call: Call<ConnectionState>,
        params: types::RpcDiscoverParams,
    ) -> Reply<'_, types::RpcDiscoverResult> {
        Reply::ready(system::discover(self, call, params))
    }
}
