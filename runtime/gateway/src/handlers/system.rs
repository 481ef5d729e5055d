//! `system.info`, `system.disconnect`, `rpc.discover`.

use flynn_protocol::types::{
    RpcDiscoverParams, RpcDiscoverResult, SystemDisconnectParams, SystemDisconnectResult,
    SystemInfoParams, SystemInfoResult,
};
use flynn_protocol::wire::{Call, RpcError};

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

/// Read-only and allocation-light: this is the benchmarked hot path.
pub fn info(
    gw: &Gateway,
    call: Call<ConnectionState>,
    _: SystemInfoParams,
) -> Result<SystemInfoResult, RpcError> {
    Ok(SystemInfoResult {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime: gw.uptime_seconds(),
        connections: gw.connections.count() as u64,
        connection_id: Some(call.connection.id.clone()),
        session_id: Some(call.connection.session_id()),
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

/// The spec document itself.
pub fn discover(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: RpcDiscoverParams,
) -> Result<RpcDiscoverResult, RpcError> {
    serde_json::from_str(flynn_protocol::SPEC_JSON)
        .map_err(|e| RpcError::internal(format!("the embedded spec does not parse: {e}")))
}
