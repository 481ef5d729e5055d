//! `system.info`, `system.disconnect` and `system.capabilities`: `impl SystemMethods for Gateway`
//! (at the end) routes each to its function.

use flynn_protocol::SystemMethods;
use flynn_protocol::types::{
    GatewayLimits, NodePolicy, ProtocolVersionInfo, QueueMode, SystemCapabilitiesParams,
    SystemCapabilitiesResult, SystemDisconnectParams, SystemDisconnectResult, SystemInfoParams,
    SystemInfoResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError, SharedStr};

use super::nodes::nz;
use crate::connection::ConnectionState;
use crate::gateway::Gateway;

/// The version `system.info` answers with: static, so the result does not copy it.
const VERSION: SharedStr = SharedStr::from_static(env!("CARGO_PKG_VERSION"));

/// Read-only and allocation-free: this is the benchmarked hot path. The three strings are
/// shared, not copied (`SharedStr`, the spec's `x-decisions` entry `shared-result-strings`).
pub fn info(
    gw: &Gateway,
    call: Call<ConnectionState>,
    _: SystemInfoParams,
) -> Result<SystemInfoResult, RpcError> {
    Ok(SystemInfoResult {
        version: VERSION,
        uptime: gw.uptime_seconds(),
        connections: gw.connections.count() as u64,
        connection_id: Some(SharedStr::from(&call.connection.id)),
        session_id: Some(call.connection.session_shared().into()),
    })
}

/// Replies, then closes the connection with 1000.
pub fn disconnect(
    _: &Gateway,
    call: Call<ConnectionState>,
    _: SystemDisconnectParams,
) -> Result<SystemDisconnectResult, RpcError> {
    call.connection
        .request_close(1000, "disconnect requested by client");
    Ok(SystemDisconnectResult { success: true })
}

pub fn capabilities(
    gw: &Gateway,
    call: Call<ConnectionState>,
    _: SystemCapabilitiesParams,
) -> Result<SystemCapabilitiesResult, RpcError> {
    let config = gw.config();
    let nodes = &config.server.nodes;
    let me = gw.nodes.get(&call.connection.id);
    let server = &config.server;
    Ok(SystemCapabilitiesResult {
        protocol: ProtocolVersionInfo {
            version: nz(flynn_protocol::PROTOCOL_VERSION.max(1) as u64),
            spec_version: Some(flynn_protocol::SPEC_VERSION.to_owned()),
        },
        nodes: NodePolicy {
            enabled: nodes.enabled,
            location_enabled: nodes.enabled && nodes.location.enabled,
            push_enabled: nodes.enabled && nodes.push.enabled,
            allowed_roles: nodes.allowed_roles.clone(),
            registered: me.is_some(),
            role: me.as_ref().map(|r| r.role.clone()),
            node_id: me.as_ref().map(|r| r.node_id.clone()),
        },
        feature_gates: nodes.feature_gates.clone().into_iter().collect(),
        scopes: call.connection.identity.scopes().iter().collect(),
        limits: Some(GatewayLimits {
            max_frame_bytes: nz(server.max_frame_bytes as u64),
            max_connections: nz(server.max_connections as u64),
            outbound_buffer_frames: nz(server.outbound_buffer_frames as u64),
            ping_interval_ms: nz(server.ping_interval_ms),
        }),
        queue_modes: vec![
            QueueMode::Followup,
            QueueMode::Collect,
            QueueMode::Steer,
            QueueMode::SteerBacklog,
            QueueMode::Interrupt,
        ],
    })
}

impl SystemMethods for Gateway {
    fn system_info(
        &self,
        call: Call<ConnectionState>,
        params: SystemInfoParams,
    ) -> Reply<'_, SystemInfoResult> {
        Reply::ready(info(self, call, params))
    }
    fn system_disconnect(
        &self,
        call: Call<ConnectionState>,
        params: SystemDisconnectParams,
    ) -> Reply<'_, SystemDisconnectResult> {
        Reply::ready(disconnect(self, call, params))
    }
    fn system_capabilities(
        &self,
        call: Call<ConnectionState>,
        params: SystemCapabilitiesParams,
    ) -> Reply<'_, SystemCapabilitiesResult> {
        Reply::ready(capabilities(self, call, params))
    }
}
