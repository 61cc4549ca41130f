//! One service, assembled: what every service's `startup.rs` did alike —
//! wait for the database and its schema, check both accounts, start the
//! outbox relay, subscribe consumers, report counters, guard staff routes
//! and serve — so that a service states only its own actors and routes.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message, Recipient};
use actix_web::web;
use contracts::events::Event;
use contracts::topology::{Feed, Needs, QueueNames};
use foundation::outage::Gate;
use messaging::amqp::{self, Endpoint};
use messaging::consumer::{ConsumerContext, Drain, EventConsumer, FromEvents};
use messaging::outbox::Outbox;
use messaging::outbox::relay::{OutboxRelay, RelaySettings};
use sea_orm::DatabaseConnection;
use slog::Logger;

use crate::config::ServiceSettings;
use crate::http::StaffAccess;
use crate::listeners::Listeners;
use crate::metrics::Metrics;
use crate::service::{Running, connect_when_schema_is_current, start_relay};

/// Counter values by their label values, as [`Metrics::watch_counters`] reports them.
pub type Labelled<const LABELS: usize> = Vec<([&'static str; LABELS], u64)>;

/// A service being put together: connected to a current database, its
/// listeners bound, its broker access being checked.
pub struct ServiceBuilder {
    service: &'static str,
    settings: ServiceSettings,
    db: DatabaseConnection,
    listeners: Listeners,
    broker: Endpoint,
    consumers: ConsumerContext,
    metrics: Metrics,
    drains: Vec<Recipient<Drain>>,
    log: Logger,
}

impl ServiceBuilder {
    /// Waits for PostgreSQL and the schema this build knows, answering
    /// probes meanwhile; checks the database role's privileges (a missing
    /// one is an error) and, in the background, the broker user's (a
    /// missing one fails health). RabbitMQ itself is reached in the
    /// background: nothing here waits for it.
    pub async fn connect(
        service: &'static str,
        settings: &ServiceSettings,
        log: &Logger,
    ) -> anyhow::Result<Self> {
        let (db, listeners) = connect_when_schema_is_current(service, settings, log).await?;
        let broker = settings.amqp();
        // One gate for all the service's consumers: an outage pauses them all.
        let consumers =
            ConsumerContext::for_database(service, &db, &settings.consumer, log.clone());
        amqp::check_access(&broker, Needs::of(service), consumers.health.clone(), log);
        Ok(Self {
            service,
            settings: settings.clone(),
            db,
            listeners,
            broker,
            consumers,
            metrics: Metrics::default(),
            drains: Vec::new(),
            log: log.clone(),
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn log(&self) -> &Logger {
        &self.log
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The database's outage gate, shared with the consumers.
    pub fn gate(&self) -> Gate {
        self.consumers.gate.clone()
    }

    /// Starts the outbox relay of the service; its counters and the
    /// outbox backlog are reported on `/metrics`.
    pub fn relay(&self, settings: RelaySettings) -> Addr<OutboxRelay> {
        let relay = start_relay(&self.db, self.service, &self.broker, settings, &self.log);
        self.metrics
            .watch_relay(relay.clone(), Outbox::new(self.db.clone(), self.service));
        relay
    }

    /// Reports, as the counter family `name`, what `actor` answers `query`
    /// with, turned into labelled values by `labelled`; read at each scrape.
    pub fn report_counters<A, Q, const LABELS: usize>(
        &self,
        (name, help, labels): (&'static str, &'static str, [&'static str; LABELS]),
        actor: Addr<A>,
        query: Q,
        labelled: fn(Q::Result) -> Labelled<LABELS>,
    ) where
        A: Actor + Handler<Q>,
        A::Context: ToEnvelope<A, Q>,
        Q: Message + Clone + Send + Sync + 'static,
        Q::Result: Send,
    {
        self.metrics.watch_counters(
            name,
            help,
            labels,
            Arc::new(move || {
                let (actor, query) = (actor.clone(), query.clone());
                Box::pin(async move { Some(labelled(actor.send(query).await.ok()?)) })
            }),
        );
    }

    /// Consumes the service's queue of `feed` into `handler`, in batches;
    /// the consumer is drained when the service stops.
    pub fn consume<E, M>(&mut self, feed: Feed, handler: Recipient<M>) -> Addr<EventConsumer<E, M>>
    where
        E: Event + Clone + Unpin,
        M: FromEvents<E>,
    {
        let subscription = amqp::subscribe(
            &self.broker,
            QueueNames::new(self.service, feed),
            self.settings.consumer.prefetch,
            self.consumers.health.clone(),
            self.log.clone(),
        );
        let consumer = EventConsumer::new(handler, self.consumers.clone()).start_on(subscription);
        self.drains.push(consumer.clone().recipient());
        consumer
    }

    /// What staff routes check a bearer token against (`ADMIN_TOKEN`;
    /// without one they answer 403).
    pub fn staff_access(&self, token: Option<String>) -> web::Data<StaffAccess> {
        web::Data::new(StaffAccess::new(token, self.service, self.log.clone()))
    }

    /// Serves what `configure` registers on the public listener, and the
    /// probes and metrics on the admin one ([`Running::start`]).
    pub fn serve<F>(self, configure: F) -> anyhow::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        Running::start(
            self.listeners,
            self.settings.http,
            &self.consumers,
            &self.metrics,
            self.drains,
            &self.log,
            configure,
        )
    }
}
