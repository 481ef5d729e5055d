//! Companion nodes: `node.*`, and the operator views `system.location` and `system.nodes`;
//! `impl NodesMethods for Gateway` (at the end) routes each to its function.
//!
//! A registration belongs to the connection that made it and disappears when it closes; the
//! node's last-known location, status and push token are persisted by node id, so they survive
//! reconnects and restarts. Push tokens leave the gateway only as masked previews.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;

use flynn_protocol::NodesMethods;
use flynn_protocol::types::{
    NodeCapabilities, NodeCapabilitiesGetParams, NodeCapabilitiesGetResult, NodeLocation,
    NodeLocationEntry, NodeLocationGetParams, NodeLocationGetResult, NodeLocationSetParams,
    NodeLocationSetResult, NodeProtocol, NodePushTokenSetParams, NodePushTokenSetResult, NodeRef,
    NodeRegisterParams, NodeRegisterResult, NodeSnapshot, NodeStatus, NodeStatusSetParams,
    NodeStatusSetResult, PushProvider, PushTokenPreview, SystemLocationParams,
    SystemLocationResult, SystemNodesParams, SystemNodesResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use serde::{Deserialize, Serialize};

use super::store_error;
use crate::config::NodesConfig;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};
use crate::node_registry::{NodeEntry, Registration};

/// InvalidRequest on `method` for a closed gate, naming the config key that opens it.
fn gate_closed(what: &str, key: &str) -> RpcError {
    RpcError::new(
        flynn_protocol::ErrorCode::InvalidRequest,
        format!("{what} are disabled; set {key} = true"),
    )
    .with_data(serde_json::json!({ "path": "method", "expected": format!("{key} = true") }))
}

fn nodes_gate(gw: &Gateway) -> Result<(), RpcError> {
    if gw.config().server.nodes.enabled {
        Ok(())
    } else {
        Err(gate_closed("nodes", "server.nodes.enabled"))
    }
}

fn location_gate(gw: &Gateway) -> Result<(), RpcError> {
    nodes_gate(gw)?;
    if gw.config().server.nodes.location.enabled {
        Ok(())
    } else {
        Err(gate_closed(
            "node locations",
            "server.nodes.location.enabled",
        ))
    }
}

fn push_gate(gw: &Gateway) -> Result<(), RpcError> {
    nodes_gate(gw)?;
    if gw.config().server.nodes.push.enabled {
        Ok(())
    } else {
        Err(gate_closed("push tokens", "server.nodes.push.enabled"))
    }
}

pub(super) fn nz(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN)
}

fn node_ref(r: &Registration) -> NodeRef {
    NodeRef {
        id: r.node_id.clone(),
        role: r.role.clone(),
    }
}

fn invalid(path: &str, message: impl Into<String>) -> RpcError {
    RpcError::invalid(path, message)
}

fn registered(gw: &Gateway, call: &Call<ConnectionState>) -> Result<Registration, RpcError> {
    gw.nodes.get(&call.connection.id).ok_or_else(|| {
        invalid(
            "method",
            "this connection is not registered as a node; call node.register first",
        )
    })
}

/// The stored location record: the wire location plus the role it was reported under.
#[derive(Serialize, Deserialize)]
struct StoredLocation {
    role: String,
    location: NodeLocation,
}

pub fn register(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: NodeRegisterParams,
) -> Result<NodeRegisterResult, RpcError> {
    let config = gw.config();
    let nodes = &config.server.nodes;
    nodes_gate(gw)?;
    check_node_identity(nodes, &p)?;
    let client_version = p.protocol_version.get();
    let negotiated = negotiate_version(nodes, client_version)?;
    let (declared, enabled) = node_capabilities(nodes, &p.capabilities);
    let registration = Registration {
        node_id: p.node_id.clone(),
        role: p.role.clone(),
        connection_id: call.connection.id.to_string(),
        negotiated_version: negotiated,
        client_version,
        declared: declared.clone(),
        enabled: enabled.clone(),
        registered_at_ms: now_ms(),
    };
    gw.nodes.insert(registration.clone());
    Ok(NodeRegisterResult {
        registered: true,
        node: node_ref(&registration),
        protocol: NodeProtocol {
            server_version: nz(server_version(nodes)),
            client_version: nz(client_version),
            negotiated_version: nz(negotiated),
        },
        capabilities: NodeCapabilities { declared, enabled },
    })
}

/// The node id is 1-128 characters and the role one of `server.nodes.allowed_roles`.
fn check_node_identity(nodes: &NodesConfig, p: &NodeRegisterParams) -> Result<(), RpcError> {
    if p.node_id.trim().is_empty() || p.node_id.len() > 128 {
        return Err(invalid(
            "params.nodeId",
            "`nodeId` must be 1-128 characters",
        ));
    }
    if !nodes.allowed_roles.iter().any(|r| r == &p.role) {
        return Err(invalid(
            "params.role",
            format!(
                "role `{}` is not allowed; allowed roles: {} (server.nodes.allowed_roles)",
                p.role,
                nodes.allowed_roles.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The client speaks every version up to the one it sends; pick the highest we share.
fn negotiate_version(nodes: &NodesConfig, client_version: u64) -> Result<u64, RpcError> {
    nodes
        .protocol_versions
        .iter()
        .filter_map(|v| u64::try_from(*v).ok())
        .filter(|v| *v >= 1 && *v <= client_version)
        .max()
        .ok_or_else(|| {
            invalid(
                "params.protocolVersion",
                format!(
                    "no common protocol version: this gateway speaks {:?}, the node offered up to {client_version}",
                    nodes.protocol_versions
                ),
            )
        })
}

/// The declared capabilities and those of them whose feature gate is on. The client's order,
/// as the protocol document echoes it; a repeated capability once, where it first appeared.
fn node_capabilities(nodes: &NodesConfig, capabilities: &[String]) -> (Vec<String>, Vec<String>) {
    let mut seen = HashSet::with_capacity(capabilities.len());
    let declared: Vec<String> = capabilities
        .iter()
        .filter(|c| seen.insert(c.as_str()))
        .cloned()
        .collect();
    let enabled: Vec<String> = declared
        .iter()
        .filter(|c| {
            nodes
                .feature_gates
                .get(c.as_str())
                .copied()
                .unwrap_or(false)
        })
        .cloned()
        .collect();
    (declared, enabled)
}

/// The highest protocol version this gateway speaks (at least 1).
fn server_version(nodes: &NodesConfig) -> u64 {
    nodes
        .protocol_versions
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as u64
}

pub fn capabilities_get(
    gw: &Gateway,
    call: Call<ConnectionState>,
    _: NodeCapabilitiesGetParams,
) -> Result<NodeCapabilitiesGetResult, RpcError> {
    nodes_gate(gw)?;
    Ok(match gw.nodes.get(&call.connection.id) {
        Some(r) => NodeCapabilitiesGetResult {
            registered: true,
            node: Some(node_ref(&r)),
            protocol: Some(NodeProtocol {
                server_version: nz(gw
                    .config()
                    .server
                    .nodes
                    .protocol_versions
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(1)
                    .max(1) as u64),
                client_version: nz(r.client_version),
                negotiated_version: nz(r.negotiated_version),
            }),
            capabilities: NodeCapabilities {
                declared: r.declared,
                enabled: r.enabled,
            },
        },
        None => NodeCapabilitiesGetResult {
            registered: false,
            node: None,
            protocol: None,
            capabilities: NodeCapabilities {
                declared: Vec::new(),
                enabled: Vec::new(),
            },
        },
    })
}

fn stored_location(json: Option<String>) -> Option<StoredLocation> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

pub async fn location_set(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: NodeLocationSetParams,
) -> Result<NodeLocationSetResult, RpcError> {
    location_gate(gw)?;
    let r = registered(gw, &call)?;
    if !(-90.0..=90.0).contains(&p.latitude) || !p.latitude.is_finite() {
        return Err(invalid(
            "params.latitude",
            "`latitude` must be between -90 and 90",
        ));
    }
    if !(-180.0..=180.0).contains(&p.longitude) || !p.longitude.is_finite() {
        return Err(invalid(
            "params.longitude",
            "`longitude` must be between -180 and 180",
        ));
    }
    let received = now_ms().max(0) as u64;
    let location = NodeLocation {
        latitude: p.latitude,
        longitude: p.longitude,
        accuracy_meters: p.accuracy_meters,
        source: p.source,
        captured_at: p.captured_at.unwrap_or(received),
        received_at: received,
    };
    let stored = StoredLocation {
        role: r.role.clone(),
        location: location.clone(),
    };
    let json = serde_json::to_string(&stored).map_err(|e| RpcError::internal(e.to_string()))?;
    gw.store
        .save_node_location(&r.node_id, json, received as i64)
        .await
        .map_err(store_error)?;
    Ok(NodeLocationSetResult {
        updated: true,
        node: node_ref(&r),
        location,
    })
}

pub async fn location_get(
    gw: &Gateway,
    call: Call<ConnectionState>,
    _: NodeLocationGetParams,
) -> Result<NodeLocationGetResult, RpcError> {
    location_gate(gw)?;
    let r = registered(gw, &call)?;
    let stored = stored_location(
        gw.store
            .node_location(&r.node_id)
            .await
            .map_err(store_error)?,
    );
    Ok(NodeLocationGetResult {
        node: node_ref(&r),
        location: stored.map(|s| s.location),
    })
}

pub async fn status_set(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: NodeStatusSetParams,
) -> Result<NodeStatusSetResult, RpcError> {
    nodes_gate(gw)?;
    let r = registered(gw, &call)?;
    if p.battery_pct.is_some_and(|b| !(0.0..=100.0).contains(&b)) {
        return Err(invalid(
            "params.batteryPct",
            "`batteryPct` must be between 0 and 100",
        ));
    }
    let status = NodeStatus {
        platform: p.platform,
        app_version: p.app_version,
        device_name: p.device_name,
        status_text: p.status_text,
        battery_pct: p.battery_pct,
        power_source: p.power_source,
        received_at: now_ms().max(0) as u64,
    };
    let json = serde_json::to_string(&status).map_err(|e| RpcError::internal(e.to_string()))?;
    gw.store
        .save_node_status(&r.node_id, json, status.received_at as i64)
        .await
        .map_err(store_error)?;
    Ok(NodeStatusSetResult {
        updated: true,
        node: node_ref(&r),
        status,
    })
}

/// `fcm_...3456`: enough to recognise a token, not enough to use it.
pub fn token_preview(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 10 {
        return "...".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

fn provider_name(p: PushProvider) -> &'static str {
    match p {
        PushProvider::Apns => "apns",
        PushProvider::Fcm => "fcm",
    }
}

fn parse_provider(p: &str) -> Option<PushProvider> {
    match p {
        "apns" => Some(PushProvider::Apns),
        "fcm" => Some(PushProvider::Fcm),
        _ => None,
    }
}

pub async fn push_token_set(
    gw: &Gateway,
    call: Call<ConnectionState>,
    p: NodePushTokenSetParams,
) -> Result<NodePushTokenSetResult, RpcError> {
    push_gate(gw)?;
    let r = registered(gw, &call)?;
    let token: String = p.token.to_string();
    gw.store
        .save_push_token(&r.node_id, provider_name(p.provider), &token, now_ms())
        .await
        .map_err(store_error)?;
    Ok(NodePushTokenSetResult {
        updated: true,
        node: node_ref(&r),
        provider: p.provider,
        token_preview: token_preview(&token),
    })
}
pub async fn location(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemLocationParams,
) -> Result<SystemLocationResult, RpcError> {
    let config = gw.config();
    if !(config.server.nodes.enabled && config.server.nodes.location.enabled) {
        return Ok(SystemLocationResult {
            locations: Vec::new(),
        });
    }
    let known: HashMap<String, NodeEntry> = gw
        .nodes
        .all()
        .into_iter()
        .map(|e| (e.registration.node_id.clone(), e))
        .collect();
    let records = gw.store.nodes().await.map_err(store_error)?;
    let mut locations = Vec::new();
    for record in records {
        let Some(stored) = stored_location(record.location) else {
            continue;
        };
        let entry = known.get(&record.node_id);
        locations.push(NodeLocationEntry {
            node_id: record.node_id.clone(),
            role: entry.map_or(stored.role, |e| e.registration.role.clone()),
            connected: entry.is_some_and(|e| e.connected),
            location: stored.location,
        });
    }
    // Most recently received first.
    locations.sort_by(|a, b| {
        b.location
            .received_at
            .cmp(&a.location.received_at)
            .then_with(|| a.node_id.cmp(&b.node_id))
    });
    Ok(SystemLocationResult { locations })
}

pub async fn nodes(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: SystemNodesParams,
) -> Result<SystemNodesResult, RpcError> {
    if !gw.config().server.nodes.enabled {
        return Ok(SystemNodesResult { nodes: Vec::new() });
    }
    let mut nodes = Vec::new();
    for entry in gw.nodes.all() {
        let r = &entry.registration;
        let record = gw.store.node(&r.node_id).await.map_err(store_error)?;
        let (location, status, push) = match record {
            Some(rec) => (
                stored_location(rec.location).map(|s| s.location),
                rec.status
                    .and_then(|s| serde_json::from_str::<NodeStatus>(&s).ok()),
                rec.push,
            ),
            None => (None, None, None),
        };
        nodes.push(NodeSnapshot {
            node_id: r.node_id.clone(),
            role: r.role.clone(),
            connection_id: r.connection_id.clone(),
            connected: entry.connected,
            registered_at: r.registered_at_ms.max(0) as u64,
            protocol_version: nz(r.negotiated_version),
            capabilities: NodeCapabilities {
                declared: r.declared.clone(),
                enabled: r.enabled.clone(),
            },
            location,
            status,
            push_token: push.and_then(|p| {
                Some(PushTokenPreview {
                    provider: parse_provider(&p.provider)?,
                    token_preview: token_preview(&p.token),
                    updated_at: p.updated_at_ms.max(0) as u64,
                })
            }),
        });
    }
    Ok(SystemNodesResult { nodes })
}

impl NodesMethods for Gateway {
    fn node_register(
        &self,
        call: Call<ConnectionState>,
        params: NodeRegisterParams,
    ) -> Reply<'_, NodeRegisterResult> {
        Reply::ready(register(self, call, params))
    }
    fn node_capabilities_get(
        &self,
        call: Call<ConnectionState>,
        params: NodeCapabilitiesGetParams,
    ) -> Reply<'_, NodeCapabilitiesGetResult> {
        Reply::ready(capabilities_get(self, call, params))
    }
    fn node_location_set(
        &self,
        call: Call<ConnectionState>,
        params: NodeLocationSetParams,
    ) -> Reply<'_, NodeLocationSetResult> {
        Reply::later(location_set(self, call, params))
    }
    fn node_location_get(
        &self,
        call: Call<ConnectionState>,
        params: NodeLocationGetParams,
    ) -> Reply<'_, NodeLocationGetResult> {
        Reply::later(location_get(self, call, params))
    }
    fn node_status_set(
        &self,
        call: Call<ConnectionState>,
        params: NodeStatusSetParams,
    ) -> Reply<'_, NodeStatusSetResult> {
        Reply::later(status_set(self, call, params))
    }
    fn node_push_token_set(
        &self,
        call: Call<ConnectionState>,
        params: NodePushTokenSetParams,
    ) -> Reply<'_, NodePushTokenSetResult> {
        Reply::later(push_token_set(self, call, params))
    }
    fn system_location(
        &self,
        call: Call<ConnectionState>,
        params: SystemLocationParams,
    ) -> Reply<'_, SystemLocationResult> {
        Reply::later(location(self, call, params))
    }
    fn system_nodes(
        &self,
        call: Call<ConnectionState>,
        params: SystemNodesParams,
    ) -> Reply<'_, SystemNodesResult> {
        Reply::later(nodes(self, call, params))
    }
}

#[cfg(test)]
mod tests {
    use super::token_preview;

    #[test]
    fn previews_never_show_the_whole_token() {
        let token = "fcm_abcdefghijklmnopqrstuvwxyz123456";
        let preview = token_preview(token);
        assert_eq!(preview, "fcm_...3456");
        assert!(!preview.contains("abcdefghijklmnop"));
        assert_eq!(token_preview("short"), "...");
    }
}
