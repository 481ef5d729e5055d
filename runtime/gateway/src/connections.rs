//! The live WebSocket connections: how many (the `server.max_connections` slots) and which,
//! through the narrow [`Live`] view of a connection that `crate::connection` implements, so
//! that what holds the registry (the gateway) does not reach the connection loop.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
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
    /// Wakes the connection's loop, which then looks at the gateway's shutdown token (see
    /// [`Connections::wake_all`]).
    fn wake(&self);
}

/// Live WebSocket connections.
#[derive(Default)]
pub struct Connections {
    count: AtomicUsize,
    by_id: Mutex<HashSet<ById>>,
}

/// A registry entry, found by its connection's id. The id is not copied into a key of its own:
/// with tens of thousands of idle connections, a `String` key per entry (and a wider table slot)
/// is memory every one of them pays for.
struct ById(Arc<dyn Live>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        self.0.id()
    }
}

impl Hash for ById {
    // Must hash as the `str` it borrows as, for lookups by id.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id().hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for ById {}

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
            // Replaces an entry of the same id (ids are fresh UUIDs: never in practice).
            map.replace(ById(connection));
        }
    }

    pub fn unregister(&self, id: &str) {
        if let Ok(mut map) = self.by_id.lock() {
            map.remove(id);
        }
    }

    /// Wakes every live connection: shutdown began. Connections do not wait on the shutdown
    /// token in each round of their loop (polling it there cost every request a lock and a
    /// waiter registration); they look at it when woken, and once when they start, after
    /// registering: so each either is woken here or sees the token already cancelled.
    pub fn wake_all(&self) {
        if let Ok(map) = self.by_id.lock() {
            for entry in map.iter() {
                entry.0.wake();
            }
        }
    }

    /// A snapshot of the live connections.
    pub fn all(&self) -> Vec<Arc<dyn Live>> {
        self.by_id
            .lock()
            .map(|map| map.iter().map(|entry| entry.0.clone()).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static str);

    impl Live for Fake {
        fn id(&self) -> &str {
            self.0
        }
        fn session_id(&self) -> String {
            format!("ws:{}", self.0)
        }
        fn attach(&self, _: &str) {}
        fn wake(&self) {}
    }

    fn ids(registry: &Connections) -> Vec<String> {
        let mut ids: Vec<String> = registry.all().iter().map(|c| c.id().to_owned()).collect();
        ids.sort();
        ids
    }

    /// Entries are found by the connection's own id: registering, listing and removing by id.
    #[test]
    fn registers_and_removes_by_id() {
        let registry = Connections::default();
        registry.register(Arc::new(Fake("a")));
        registry.register(Arc::new(Fake("b")));
        registry.register(Arc::new(Fake("b")));
        assert_eq!(ids(&registry), ["a", "b"]);
        registry.unregister("a");
        assert_eq!(ids(&registry), ["b"]);
        registry.unregister("nope");
        registry.unregister("b");
        assert!(ids(&registry).is_empty());
    }
}
