//! `rpc.discover`: `impl RpcMethods for Gateway` (at the end) routes it to its function.

use flynn_protocol::RpcMethods;
use flynn_protocol::types::{RpcDiscoverParams, RpcDiscoverResult};
use flynn_protocol::wire::{Call, Reply, RpcError};

use crate::connection::ConnectionState;
use crate::gateway::Gateway;

/// The spec document itself.
pub fn discover(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: RpcDiscoverParams,
) -> Result<RpcDiscoverResult, RpcError> {
    serde_json::from_str(flynn_protocol::SPEC_JSON)
        .map_err(|e| RpcError::internal(format!("the embedded spec does not parse: {e}")))
}

impl RpcMethods for Gateway {
    fn rpc_discover(
        &self,
        call: Call<ConnectionState>,
        params: RpcDiscoverParams,
    ) -> Reply<'_, RpcDiscoverResult> {
        Reply::ready(discover(self, call, params))
    }
}
