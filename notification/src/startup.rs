use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::{ORDER_CREATED, QueueNames, STOCK_EVENTS};
use shared::consumer::{ConsumerContext, ConsumerStats};
use shared::health::ServiceHealth;
use slog::{Logger, info};

use crate::actors::mailer::{Mailer, SEND_LEASE};
use crate::actors::{OrderCreatedConsumer, StockEventConsumer};
use crate::config::Settings;
use crate::routes;
use crate::store::EmailLedger;

pub const SERVICE: &str = "notification";

pub struct Application {
    port: u16,
    server: Server,
    mailer: Addr<Mailer>,
    order_consumer: Addr<OrderCreatedConsumer>,
    stock_consumer: Addr<StockEventConsumer>,
    consumers: ConsumerContext,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it), migrates, starts the actors
    /// and binds the HTTP listener; RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        let ledger = EmailLedger::new(db.clone(), SEND_LEASE);
        let mailer = Mailer::new(ledger, log.clone()).start();
        // One gate and one set of counters for both consumers: the service's.
        let consumers = ConsumerContext::for_database(&db, log.clone());
        let topology = settings.consumer.topology();
        let order_consumer =
            OrderCreatedConsumer::new(mailer.clone().recipient(), consumers.clone())
                .start_consuming(
                    &settings.amqp_url,
                    topology,
                    QueueNames::new(SERVICE, ORDER_CREATED),
                    settings.consumer,
                );
        let stock_consumer = StockEventConsumer::new(mailer.clone().recipient(), consumers.clone())
            .start_consuming(
                &settings.amqp_url,
                topology,
                QueueNames::new(SERVICE, STOCK_EVENTS),
                settings.consumer,
            );

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let health = web::Data::new(consumers.health.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(health.clone())
                .configure(routes::configure)
        })
        .listen(listener)?
        // Requests in flight get a few seconds to finish on SIGTERM.
        .shutdown_timeout(5)
        .run();
        info!(log, "listening"; "http_addr" => %settings.http_addr, "port" => port);
        Ok(Self {
            port,
            server,
            mailer,
            order_consumer,
            stock_consumer,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        shared::service::Service::run_until_stopped(self).await
    }
}

impl shared::service::Service for Application {
    async fn run_until_stopped(self) -> anyhow::Result<()> {
        let health = self.consumers.health.clone();
        let consumers = vec![
            self.order_consumer.recipient(),
            self.stock_consumer.recipient(),
        ];
        shared::service::serve_until_stopped(self.server, &health, consumers).await
    }
}
