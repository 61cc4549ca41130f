//! What the consumers of one service share.

use slog::Logger;

use super::ConsumerStatsByQueue;
use crate::config::ConsumerSettings;
use foundation::health::ServiceHealth;
use foundation::outage::Gate;
use foundation::readiness::Readiness;

/// What a consumer shares with the rest of its service.
#[derive(Clone)]
pub struct ConsumerContext {
    /// One per service: an outage pauses all its consumers.
    pub gate: Gate,
    pub health: ServiceHealth,
    /// Each consumer's counters, under the name of its queue.
    pub stats: ConsumerStatsByQueue,
    /// `GET /ready`: each consumer's subscription is watched there.
    pub readiness: Readiness,
    /// The most events handed to the domain actor at once.
    pub max_batch: usize,
    /// Larger deliveries are dead-lettered without being decoded.
    pub max_message_bytes: usize,
    pub log: Logger,
}

impl ConsumerContext {
    /// The context of a service whose consumers depend on the database
    /// `db`: paused, they resume once it takes a write again (the heartbeat
    /// of `service`); readiness asks only that it answers as the primary.
    pub fn for_database(
        service: &'static str,
        db: &sea_orm::DatabaseConnection,
        settings: &ConsumerSettings,
        log: Logger,
    ) -> Self {
        let database = foundation::db::probe(db);
        Self {
            gate: Gate::new(foundation::db::write_probe(db, service), log.clone()),
            health: ServiceHealth::new(),
            stats: ConsumerStatsByQueue::default(),
            readiness: Readiness::new(database, log.clone()),
            max_batch: usize::from(settings.batch.max(1)),
            max_message_bytes: settings.max_message_bytes,
            log,
        }
    }
}
