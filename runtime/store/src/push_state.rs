//! Whether any push subscription may be stored (see [`PushState`]). A module of its own
//! because the store handle holds it and the push queries use it.

use std::sync::atomic::{AtomicU8, Ordering};

/// Whether any push subscription may be stored, so that the lookup every finished agent turn
/// makes (`Store::push_subscriptions_of_session`) costs nothing on a gateway where nobody
/// subscribed (it was a reader round trip and a re-prepared query, about 7 % of a turn's CPU).
/// Conservative: "none" is only ever concluded on the writer thread, which runs every insert,
/// and an insert marks "maybe" before it writes; deletes never lower it.
#[derive(Debug, Default)]
pub(crate) struct PushState(AtomicU8);

pub(crate) const UNKNOWN: u8 = 0;
pub(crate) const NONE: u8 = 1;
pub(crate) const MAYBE: u8 = 2;

impl PushState {
    pub(crate) fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    /// An insert is about to run (on the writer thread).
    pub(crate) fn may_have_some(&self) {
        self.0.store(MAYBE, Ordering::Release);
    }

    /// What a count on the writer thread found, unless an insert already said MAYBE.
    pub(crate) fn learned(&self, found: u8) {
        let _ = self
            .0
            .compare_exchange(UNKNOWN, found, Ordering::AcqRel, Ordering::Acquire);
    }
}
