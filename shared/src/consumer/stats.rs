//! What a consumer did, counted for whoever reports it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::broker::Settlement;

/// Counters of what the consumer did, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Deliveries received and not settled yet.
    pub in_flight: AtomicU64,
    pub acked: AtomicU64,
    pub retried: AtomicU64,
    /// Handed back through an outage.
    pub parked: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub settle_failures: AtomicU64,
    /// Batches handed to the domain actor.
    pub batches: AtomicU64,
}

impl ConsumerStats {
    pub(super) fn count(&self, settlement: Settlement) {
        let counter = match settlement {
            Settlement::Ack => &self.acked,
            Settlement::Retry => &self.retried,
            Settlement::Park => &self.parked,
            Settlement::DeadLetter => &self.dead_lettered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
