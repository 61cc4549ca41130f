use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::{QueueNames, STOCK_EVENTS};
use shared::consumer::{ConsumerContext, ConsumerStats};
use shared::health::ServiceHealth;
use shared::http::StaffAccess;
use shared::outbox::relay::OutboxRelay;
use slog::{Logger, info};

use crate::actors::StockEventConsumer;
use crate::actors::order_desk::OrderDesk;
use crate::config::Settings;
use crate::routes;
use crate::routes::orders::query_error;
use crate::store::OrderStore;

pub const SERVICE: &str = "order";

pub struct Application {
    port: u16,
    server: Server,
    order_desk: Addr<OrderDesk>,
    relay: Addr<OutboxRelay>,
    consumer: Addr<StockEventConsumer>,
    consumers: ConsumerContext,
}

impl Application {
    /// Waits for PostgreSQL, migrates, starts the actors and binds the HTTP
    /// listener. Orders are accepted while RabbitMQ is down: the relay
    /// publishes them once it is reachable.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        let topology = settings.consumer.topology();
        // One connection for the process, not one per request.
        let relay = OutboxRelay::start_publishing(
            db.clone(),
            SERVICE,
            &settings.amqp_url,
            topology,
            settings.relay.clone(),
            log.clone(),
        );
        let order_desk =
            OrderDesk::new(OrderStore::new(db.clone()), relay.clone(), log.clone()).start();
        let consumers = ConsumerContext::for_database(&db, log.clone());
        let consumer = StockEventConsumer::new(order_desk.clone().recipient(), consumers.clone())
            .start_consuming(
                &settings.amqp_url,
                topology,
                QueueNames::new(SERVICE, STOCK_EVENTS),
                settings.consumer,
            );

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let desk = web::Data::new(order_desk.clone());
        let health = web::Data::new(consumers.health.clone());
        let staff = web::Data::new(StaffAccess::new(
            settings.admin_token.clone(),
            SERVICE,
            log.clone(),
        ));
        let http_log = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(desk.clone())
                .app_data(health.clone())
                .app_data(staff.clone())
                .app_data(http_log.clone())
                .app_data(web::QueryConfig::default().error_handler(query_error))
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
            order_desk,
            relay,
            consumer,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        shared::service::Service::run_until_stopped(self).await
    }
}

impl shared::service::Service for Application {
    async fn run_until_stopped(self) -> anyhow::Result<()> {
        let health = self.consumers.health.clone();
        shared::service::serve_until_stopped(self.server, &health, vec![self.consumer.recipient()])
            .await
    }
}
