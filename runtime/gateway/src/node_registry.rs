//! The nodes registered by connections (`node.register`), kept since start: which connection
//! holds which node, and whether its connection is still open. The handlers in
//! `crate::handlers::nodes` serve it; the gateway holds it and marks a node disconnected when
//! its connection closes (`Gateway::connection_closed`).

use std::collections::HashMap;
use std::sync::Mutex;

/// A live registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node_id: String,
    pub role: String,
    pub connection_id: String,
    pub negotiated_version: u64,
    pub client_version: u64,
    pub declared: Vec<String>,
    pub enabled: Vec<String>,
    pub registered_at_ms: i64,
}

/// A node known since start, and whether its connection is still open.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub registration: Registration,
    pub connected: bool,
}

/// Registrations by node id, with an index of which connection holds which node.
#[derive(Default)]
pub struct NodeRegistry {
    inner: Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    by_node: HashMap<String, NodeEntry>,
    by_connection: HashMap<String, String>,
}

impl NodeRegistry {
    /// The registration the connection holds now.
    pub fn get(&self, connection_id: &str) -> Option<Registration> {
        let state = self.inner.lock().ok()?;
        let node_id = state.by_connection.get(connection_id)?;
        state.by_node.get(node_id).map(|e| e.registration.clone())
    }

    /// Registers; an earlier registration of the same connection is replaced, and a node id
    /// held by another connection is taken over (that connection is no longer a node).
    pub fn insert(&self, registration: Registration) {
        let Ok(mut state) = self.inner.lock() else {
            return;
        };
        if let Some(previous) = state.by_connection.remove(&registration.connection_id) {
            state.by_node.remove(&previous);
        }
        let holder = state
            .by_node
            .get(&registration.node_id)
            .map(|e| e.registration.connection_id.clone());
        if let Some(holder) = holder {
            state.by_connection.remove(&holder);
        }
        state.by_connection.insert(
            registration.connection_id.clone(),
            registration.node_id.clone(),
        );
        state.by_node.insert(
            registration.node_id.clone(),
            NodeEntry {
                registration,
                connected: true,
            },
        );
    }

    /// The connection closed: its node stays known, as disconnected.
    pub fn disconnect(&self, connection_id: &str) -> Option<String> {
        let mut state = self.inner.lock().ok()?;
        let node_id = state.by_connection.remove(connection_id)?;
        if let Some(entry) = state.by_node.get_mut(&node_id) {
            entry.connected = false;
        }
        Some(node_id)
    }

    /// Every node since start, newest registration first.
    pub fn all(&self) -> Vec<NodeEntry> {
        let mut all: Vec<NodeEntry> = self
            .inner
            .lock()
            .map(|s| s.by_node.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| {
            b.registration
                .registered_at_ms
                .cmp(&a.registration.registered_at_ms)
                .then_with(|| a.registration.node_id.cmp(&b.registration.node_id))
        });
        all
    }
}
