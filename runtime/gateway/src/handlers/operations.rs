//! Operator methods, answered by `flynn-ops`: local backends (systemd --user), docker-compose
//! dependencies, observability sources and series, service logs. The ops crate returns the
//! generated result types.

use flynn_ops::OpsError;
use flynn_protocol::OperationsMethods;
use flynn_protocol::types::{
    SystemDockerDependenciesParams, SystemDockerDependenciesResult,
    SystemDockerDependencyControlParams, SystemDockerDependencyControlResult,
    SystemLocalBackendControlParams, SystemLocalBackendControlResult, SystemLocalBackendsParams,
    SystemLocalBackendsResult, SystemObservabilitySeriesParams, SystemObservabilitySeriesResult,
    SystemObservabilitySourcesParams, SystemObservabilitySourcesResult, SystemServiceLogsParams,
    SystemServiceLogsResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};

use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};

/// `source_param` names the param holding source ids (`sourceId` or `sourceIds`).
fn ops_error_for(e: OpsError, source_param: &str) -> RpcError {
    match e {
        OpsError::UnknownSource { .. } => {
            RpcError::invalid(format!("params.{source_param}"), e.to_string())
        }
        other => ops_error(other),
    }
}

fn ops_error(e: OpsError) -> RpcError {
    let message = e.to_string();
    match e {
        OpsError::UnknownBackend { .. } => RpcError::invalid("params.backend", message),
        OpsError::UnknownDependency { .. } => RpcError::invalid("params.dependency", message),
        OpsError::UnknownSource { .. } => RpcError::invalid("params.sourceId", message),
        OpsError::ActionNotAvailable { .. } => RpcError::invalid("params.action", message),
        OpsError::InvalidParams { name, .. } => {
            RpcError::invalid(format!("params.{name}"), message)
        }
        _ => RpcError::internal(message),
    }
}

fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub async fn local_backends(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemLocalBackendsParams,
) -> Result<SystemLocalBackendsResult, RpcError> {
    let mut result = gw.ops().local_backends().await;
    let config = gw.config();
    for backend in &mut result.backends {
        backend.configured = config
            .ops
            .local_backends
            .iter()
            .any(|b| b.id() == backend.id);
    }
    Ok(result)
}

pub async fn local_backend_control(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemLocalBackendControlParams,
) -> Result<SystemLocalBackendControlResult, RpcError> {
    gw.ops()
        .local_backend_control(&p.backend, p.action)
        .await
        .map_err(ops_error)
}

pub async fn docker_dependencies(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemDockerDependenciesParams,
) -> Result<SystemDockerDependenciesResult, RpcError> {
    gw.ops().docker_dependencies().await.map_err(ops_error)
}

pub async fn docker_dependency_control(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemDockerDependencyControlParams,
) -> Result<SystemDockerDependencyControlResult, RpcError> {
    gw.ops()
        .docker_dependency_control(&p.dependency, p.action)
        .await
        .map_err(ops_error)
}

pub async fn observability_sources(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemObservabilitySourcesParams,
) -> Result<SystemObservabilitySourcesResult, RpcError> {
    Ok(gw.ops().observability_sources().await)
}

pub async fn observability_series(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemObservabilitySeriesParams,
) -> Result<SystemObservabilitySeriesResult, RpcError> {
    let ids = (!p.source_ids.is_empty()).then_some(p.source_ids.as_slice());
    gw.ops()
        .observability_series(
            Some(small(p.window_minutes.get())),
            Some(small(p.bucket_seconds.get())),
            ids,
            now_ms().max(0) as u64,
        )
        .await
        .map_err(|e| ops_error_for(e, "sourceIds"))
}

pub async fn service_logs(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: SystemServiceLogsParams,
) -> Result<SystemServiceLogsResult, RpcError> {
    gw.ops()
        .service_logs(
            &p.source_id,
            Some(small(p.lines.get())),
            p.since_seconds.map(|s| s.get()),
        )
        .await
        .map_err(ops_error)
}

impl OperationsMethods for Gateway {
    fn system_local_backends(
        &self,
        call: Call<ConnectionState>,
        params: SystemLocalBackendsParams,
    ) -> Reply<'_, SystemLocalBackendsResult> {
        Reply::later(local_backends(self, call, params))
    }
    fn system_docker_dependencies(
        &self,
        call: Call<ConnectionState>,
        params: SystemDockerDependenciesParams,
    ) -> Reply<'_, SystemDockerDependenciesResult> {
        Reply::later(docker_dependencies(self, call, params))
    }
    fn system_docker_dependency_control(
        &self,
        call: Call<ConnectionState>,
        params: SystemDockerDependencyControlParams,
    ) -> Reply<'_, SystemDockerDependencyControlResult> {
        Reply::later(docker_dependency_control(self, call, params))
    }
    fn system_local_backend_control(
        &self,
        call: Call<ConnectionState>,
        params: SystemLocalBackendControlParams,
    ) -> Reply<'_, SystemLocalBackendControlResult> {
        Reply::later(local_backend_control(self, call, params))
    }
    fn system_observability_sources(
        &self,
        call: Call<ConnectionState>,
        params: SystemObservabilitySourcesParams,
    ) -> Reply<'_, SystemObservabilitySourcesResult> {
        Reply::later(observability_sources(self, call, params))
    }
    fn system_observability_series(
        &self,
        call: Call<ConnectionState>,
        params: SystemObservabilitySeriesParams,
    ) -> Reply<'_, SystemObservabilitySeriesResult> {
        Reply::later(observability_series(self, call, params))
    }
    fn system_service_logs(
        &self,
        call: Call<ConnectionState>,
        params: SystemServiceLogsParams,
    ) -> Reply<'_, SystemServiceLogsResult> {
        Reply::later(service_logs(self, call, params))
    }
}
