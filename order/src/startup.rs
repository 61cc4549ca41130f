//! Wires the order service: the `OrderDesk` behind intake and the consumer
//! of stock events, the outbox relay, and their routes.

use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::web;
use shared::amqp::{self, QueueNames, STOCK_EVENTS};
use shared::consumer::{ConsumerContext, ConsumerStats};
use shared::health::ServiceHealth;
use shared::http::StaffAccess;
use shared::outbox::relay::OutboxRelay;
use shared::service::{Running, Service};
use slog::Logger;

use crate::actors::StockEventConsumer;
use crate::actors::order_desk::{OrderBook, OrderDesk};
use crate::config::Settings;
use crate::routes;
use crate::routes::orders::query_error;

pub const SERVICE: &str = "order";

pub struct Application {
    running: Running,
    order_desk: Addr<OrderDesk>,
    relay: Addr<OutboxRelay>,
    consumers: ConsumerContext,
}

impl Application {
    /// Waits for PostgreSQL, migrates, starts the actors and binds the HTTP
    /// listener. Orders are accepted while RabbitMQ is down: the relay
    /// publishes them once it is reachable.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::service::connect_and_migrate(&settings.database_url, &log).await?;
        let topology = settings.consumer.topology();
        let relay = shared::service::start_relay(
            &db,
            SERVICE,
            &settings.amqp_url,
            topology,
            settings.relay.clone(),
            &log,
        );
        let order_desk =
            OrderDesk::new(OrderBook::new(db.clone()), relay.clone(), log.clone()).start();
        let consumers = ConsumerContext::for_database(&db, log.clone());
        let consumer = StockEventConsumer::new(order_desk.clone().recipient(), consumers.clone())
            .start_on(amqp::subscribe(
                &settings.amqp_url,
                topology,
                QueueNames::new(SERVICE, STOCK_EVENTS),
                settings.consumer.prefetch,
                log.clone(),
            ));

        let desk = web::Data::new(order_desk.clone());
        let staff = web::Data::new(StaffAccess::new(
            settings.admin_token.clone(),
            SERVICE,
            log.clone(),
        ));
        let running = Running::start(
            settings.http_addr,
            consumers.health.clone(),
            vec![consumer.recipient()],
            &log,
            move |config| {
                config
                    .app_data(desk.clone())
                    .app_data(staff.clone())
                    .app_data(web::QueryConfig::default().error_handler(query_error));
                routes::configure(config);
            },
        )?;
        Ok(Self {
            running,
            order_desk,
            relay,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    pub fn order_desk(&self) -> Addr<OrderDesk> {
        self.order_desk.clone()
    }

    pub fn relay(&self) -> Addr<OutboxRelay> {
        self.relay.clone()
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
