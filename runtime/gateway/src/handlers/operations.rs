//! TEMPORARY placeholder (not committed)
use crate::connection::ConnectionState;
use crate::gateway::Gateway;
use flynn_protocol::types;
use flynn_protocol::wire::{Call, RpcError};
pub async fn local_backends(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemLocalBackendsParams,
) -> Result<types::SystemLocalBackendsResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn docker_dependencies(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemDockerDependenciesParams,
) -> Result<types::SystemDockerDependenciesResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn docker_dependency_control(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemDockerDependencyControlParams,
) -> Result<types::SystemDockerDependencyControlResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn local_backend_control(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemLocalBackendControlParams,
) -> Result<types::SystemLocalBackendControlResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn observability_sources(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemObservabilitySourcesParams,
) -> Result<types::SystemObservabilitySourcesResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn observability_series(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemObservabilitySeriesParams,
) -> Result<types::SystemObservabilitySeriesResult, RpcError> {
    Err(RpcError::internal("pending"))
}
pub async fn service_logs(
    _: &Gateway,
    _: Call<ConnectionState>,
    _: types::SystemServiceLogsParams,
) -> Result<types::SystemServiceLogsResult, RpcError> {
    Err(RpcError::internal("pending"))
}
