//! Wires the notification service: the `Mailer` behind the consumers of
//! `OrderCreated` and of the stock events.

use std::sync::Arc;

use actix::{Actor, Addr};
use shared::amqp::{self, ORDER_CREATED, QueueNames, STOCK_EVENTS};
use shared::consumer::{ConsumerContext, ConsumerStats};
use shared::health::ServiceHealth;
use shared::service::{Running, Service};
use slog::Logger;

use crate::actors::mailer::{Mailer, SEND_LEASE};
use crate::actors::{OrderCreatedConsumer, StockEventConsumer};
use crate::config::Settings;
use crate::routes;
use crate::store::EmailLedger;

pub const SERVICE: &str = "notification";

pub struct Application {
    running: Running,
    mailer: Addr<Mailer>,
    consumers: ConsumerContext,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it), migrates, starts the actors
    /// and binds the HTTP listener; RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::service::connect_and_migrate(&settings.database_url, &log).await?;
        let ledger = EmailLedger::new(db.clone(), SEND_LEASE);
        let mailer = Mailer::new(ledger, log.clone()).start();
        // One gate and one set of counters for both consumers: the service's.
        let consumers = ConsumerContext::for_database(&db, log.clone());
        let topology = settings.consumer.topology();
        let subscribe = |feed| {
            amqp::subscribe(
                &settings.amqp_url,
                topology,
                QueueNames::new(SERVICE, feed),
                settings.consumer.prefetch,
                log.clone(),
            )
        };
        let order_consumer =
            OrderCreatedConsumer::new(mailer.clone().recipient(), consumers.clone())
                .start_on(subscribe(ORDER_CREATED));
        let stock_consumer = StockEventConsumer::new(mailer.clone().recipient(), consumers.clone())
            .start_on(subscribe(STOCK_EVENTS));

        let running = Running::start(
            settings.http_addr,
            consumers.health.clone(),
            vec![order_consumer.recipient(), stock_consumer.recipient()],
            &log,
            routes::configure,
        )?;
        Ok(Self {
            running,
            mailer,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    pub fn mailer(&self) -> Addr<Mailer> {
        self.mailer.clone()
    }

    pub fn consumer_stats(&self) -> Arc<ConsumerStats> {
        self.consumers.stats.clone()
    }

    pub fn health(&self) -> ServiceHealth {
        self.consumers.health.clone()
    }

    /// Serves until SIGTERM or SIGINT (or until the service fails), then
    /// settles the deliveries in hand.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.running.run_until_stopped().await
    }
}

impl Service for Application {
    async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.running.run_until_stopped().await
    }
}
