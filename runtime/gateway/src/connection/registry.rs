//! The live WebSocket connections: a count that caps them (`server.max_connections`, taken as
//! a [`ConnectionSlot`] before the upgrade) and the connections by id, for handlers that act
//! on other connections (`sessions.delete` detaching them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::state::ConnectionState;

/// Live WebSocket connections.
#[derive(Default)]
pub struct Connections {
    count: AtomicUsize,
    by_id: Mutex<HashMap<String, Arc<ConnectionState>>>,
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

    pub fn register(&self, connection: Arc<ConnectionState>) {
        if let Ok(mut map) = self.by_id.lock() {
            map.insert(connection.id.clone(), connection);
        }
    }

    pub fn unregister(&self, id: &str) {
        if let Ok(mut map) = self.by_id.lock() {
            map.remove(id);
        }
    }

    /// A snapshot of the live connections.
    pub fn all(&self) -> Vec<Arc<ConnectionState>> {
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
