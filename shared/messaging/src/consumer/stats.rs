//! What a consumer did, counted for whoever reports it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::broker::Settlement;

/// Counters of what the consumer of one queue did, shared with whoever
/// reports them.
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
    /// Deliveries the broker had delivered before.
    pub redelivered: AtomicU64,
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

/// The counters of each queue a service consumes, by queue name: a
/// backlog or a run of dead letters shows on the queue it happens to.
#[derive(Debug, Clone, Default)]
pub struct ConsumerStatsByQueue(Arc<Mutex<BTreeMap<String, Arc<ConsumerStats>>>>);

impl ConsumerStatsByQueue {
    /// The counters of `queue`, created when its consumer starts (so the
    /// queue is reported, at zero, before its first delivery).
    pub fn register(&self, queue: &str) -> Arc<ConsumerStats> {
        self.0
            .lock()
            .expect("never poisoned: no panics under the lock")
            .entry(queue.to_string())
            .or_default()
            .clone()
    }

    /// Each consumed queue's counters.
    pub fn by_queue(&self) -> BTreeMap<String, Arc<ConsumerStats>> {
        self.0
            .lock()
            .expect("never poisoned: no panics under the lock")
            .clone()
    }
}
