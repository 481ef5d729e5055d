//! The live WebSocket connections: how many (the `server.max_connections` slots) and which,
//! through the narrow [`Live`] view of a connection that `crate::connection` implements, so
//! that what holds the registry (the gateway) does not reach the connection loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the gateway needs of a live connection.
pub trait Live: Send + Sync + 'static {
    /// The connection id.
    fn id(&self) -> &str;
    /// The session the connection is attached to.
    fn session_id(&self) -> String;
    /// Attaches the connection to another session.
    fn attach(&self, session_id: &str);
}

/// Live WebSocket connections.
#[derive(Default)]
pub struct Connections {
    count: AtomicUsize,
    by_id: Mutex<HashMap<String, Arc<dyn Live>>>,
}

/// A reserved connection slot; released on drop.
pub struct ConnectionSlot {
    registry: Arc<Connections>,
}

impl ConnectionSlot {
    /// The registry the slot was reserved from.
    pub fn registry(&self) -> &Connections {
        &self.registry
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.registry.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    /// Number of open WebSocket connections.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn register(&self, connection: Arc<dyn Live>) {
        if let Ok(mut map) = self.by_id.lock() {
            map.insert(connection.id().to_owned(), connection);
        }
    }

    pub fn unregister(&self, id: &str) {
        if let Ok(mut map) = self.by_id.lock() {
            map.remove(id);
        }
    }

    /// A snapshot of the live connections.
    pub fn all(&self) -> Vec<Arc<dyn Live>> {
        self.by_id
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Reserving from an `Arc<Connections>` so the slot can outlive the borrow.
pub trait Reserve {
    fn reserve(&self, max: usize) -> Option<ConnectionSlot>;
}

impl Reserve for Arc<Connections> {
    fn reserve(&self, max: usize) -> Option<ConnectionSlot> {
        let mut current = self.count.load(Ordering::Acquire);
        loop {
            if current >= max {
                return None;
            }
            match self.count.compare_exchange(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(ConnectionSlot {
                        registry: self.clone(),
                    });
                }
                Err(now) => current = now,
            }
        }
    }
}

/// A session is watched while a WebSocket connection is attached to it (no Web Push then).
impl crate::push::sender::Watchers for Connections {
    fn watched(&self, session_id: &str) -> bool {
        self.all().iter().any(|c| c.session_id() == session_id)
    }
}
