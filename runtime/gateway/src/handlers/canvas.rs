//! `canvas.*`: session-scoped artifacts persisted in the store. `put` is an upsert that keeps
//! `createdAt` and bumps `updatedAt`; lists are newest first; sizes are bounded by `[canvas]`.

use flynn_protocol::CanvasMethods;
use flynn_protocol::types::{
    self, CanvasClearParams, CanvasClearResult, CanvasDeleteParams, CanvasDeleteResult,
    CanvasGetParams, CanvasGetResult, CanvasListParams, CanvasListResult, CanvasPutParams,
    CanvasPutResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use serde_json::{Map, Value};

use super::sessions::require_session;
use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};

fn parse_object(text: Option<&str>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok())
        .unwrap_or_default()
}

fn to_wire(a: flynn_store::CanvasArtifact) -> types::CanvasArtifact {
    types::CanvasArtifact {
        content: parse_object(Some(&a.content)),
        metadata: parse_object(a.metadata.as_deref()),
        session_id: a.session_id,
        artifact_id: a.artifact_id,
        type_: a.kind,
        title: a.title,
        created_at: a.created_at_ms.max(0) as u64,
        updated_at: a.updated_at_ms.max(0) as u64,
    }
}

fn validate_artifact_id(id: &str) -> Result<(), RpcError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(RpcError::invalid(
            "params.artifactId",
            "`artifactId` must be 1-128 characters without control characters",
        ));
    }
    Ok(())
}

fn not_found(session_id: &str, artifact_id: &str) -> RpcError {
    RpcError::invalid(
        "params.artifactId",
        format!(
            "no canvas artifact `{artifact_id}` in session `{session_id}`; canvas.list shows what exists"
        ),
    )
}

pub async fn put(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: CanvasPutParams,
) -> Result<CanvasPutResult, RpcError> {
    require_session(gw, &p.session_id).await?;
    validate_artifact_id(&p.artifact_id)?;
    if p.type_.trim().is_empty() {
        return Err(RpcError::invalid(
            "params.type",
            "`type` must not be empty (e.g. `note`)",
        ));
    }
    let limits = gw.config().canvas.clone();
    let content = Value::Object(p.content).to_string();
    let metadata = (!p.metadata.is_empty()).then(|| Value::Object(p.metadata).to_string());
    // Everything stored but the (bounded) ids counts, the renderer hint included.
    let size = content.len()
        + metadata.as_ref().map_or(0, String::len)
        + p.title.as_ref().map_or(0, String::len)
        + p.type_.len();
    if size > limits.max_artifact_bytes {
        return Err(RpcError::invalid(
            "params.content",
            format!(
                "the artifact is {size} bytes; the limit is {} (canvas.max_artifact_bytes)",
                limits.max_artifact_bytes
            ),
        ));
    }
    // The store counts and inserts in one transaction: puts in flight together (pipelined on
    // one connection, or from several) cannot overshoot the cap.
    let (artifact, created) = gw
        .store
        .canvas_put(
            flynn_store::CanvasPut {
                session_id: p.session_id.into(),
                artifact_id: p.artifact_id,
                kind: p.type_,
                title: p.title,
                content,
                metadata,
                now_ms: now_ms(),
            },
            limits.max_artifacts_per_session,
        )
        .await
        .map_err(|e| match e {
            flynn_store::StoreError::CanvasFull {
                session_id,
                count,
                limit,
            } => RpcError::invalid(
                "params.artifactId",
                format!(
                    "session `{session_id}` already has {count} artifacts, the limit \
                     (canvas.max_artifacts_per_session = {limit}); delete some first or raise \
                     the limit"
                ),
            ),
            other => store_error(other),
        })?;
    Ok(CanvasPutResult {
        artifact: to_wire(artifact),
        created,
    })
}

pub async fn get(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: CanvasGetParams,
) -> Result<CanvasGetResult, RpcError> {
    require_session(gw, &p.session_id).await?;
    match gw
        .store
        .canvas_get(&p.session_id, &p.artifact_id)
        .await
        .map_err(store_error)?
    {
        Some(a) => Ok(CanvasGetResult {
            artifact: to_wire(a),
        }),
        None => Err(not_found(&p.session_id, &p.artifact_id)),
    }
}

pub async fn list(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: CanvasListParams,
) -> Result<CanvasListResult, RpcError> {
    require_session(gw, &p.session_id).await?;
    let limit = u32::try_from(p.limit.get()).unwrap_or(u32::MAX);
    let artifacts = gw
        .store
        .canvas_list(&p.session_id, limit)
        .await
        .map_err(store_error)?;
    Ok(CanvasListResult {
        artifacts: artifacts.into_iter().map(to_wire).collect(),
    })
}

pub async fn delete(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: CanvasDeleteParams,
) -> Result<CanvasDeleteResult, RpcError> {
    require_session(gw, &p.session_id).await?;
    let deleted = gw
        .store
        .canvas_delete(&p.session_id, &p.artifact_id)
        .await
        .map_err(store_error)?;
    Ok(CanvasDeleteResult { deleted })
}

pub async fn clear(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: CanvasClearParams,
) -> Result<CanvasClearResult, RpcError> {
    require_session(gw, &p.session_id).await?;
    let deleted = gw
        .store
        .canvas_clear(&p.session_id)
        .await
        .map_err(store_error)?;
    Ok(CanvasClearResult { deleted })
}

impl CanvasMethods for Gateway {
    fn canvas_put(
        &self,
        call: Call<ConnectionState>,
        params: CanvasPutParams,
    ) -> Reply<'_, CanvasPutResult> {
        Reply::later(put(self, call, params))
    }
    fn canvas_get(
        &self,
        call: Call<ConnectionState>,
        params: CanvasGetParams,
    ) -> Reply<'_, CanvasGetResult> {
        Reply::later(get(self, call, params))
    }
    fn canvas_list(
        &self,
        call: Call<ConnectionState>,
        params: CanvasListParams,
    ) -> Reply<'_, CanvasListResult> {
        Reply::later(list(self, call, params))
    }
    fn canvas_delete(
        &self,
        call: Call<ConnectionState>,
        params: CanvasDeleteParams,
    ) -> Reply<'_, CanvasDeleteResult> {
        Reply::later(delete(self, call, params))
    }
    fn canvas_clear(
        &self,
        call: Call<ConnectionState>,
        params: CanvasClearParams,
    ) -> Reply<'_, CanvasClearResult> {
        Reply::later(clear(self, call, params))
    }
}
