use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::{ORDER_CREATED, QueueNames};
use shared::consumer::{ConsumerContext, ConsumerStats};
use shared::health::ServiceHealth;
use shared::http::StaffAccess;
use shared::outbox::relay::OutboxRelay;
use slog::{Logger, info};

use crate::actors::OrderCreatedConsumer;
use crate::actors::catalogue::Catalogue;
use crate::actors::stock_keeper::StockKeeper;
use crate::config::Settings;
use crate::routes;
use crate::store::ProductStore;

pub const SERVICE: &str = "product";

pub struct Application {
    port: u16,
    server: Server,
    stock_keeper: Addr<StockKeeper>,
    consumer: Addr<OrderCreatedConsumer>,
    consumers: ConsumerContext,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it), migrates, starts the actors and
    /// binds the HTTP listener. RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        let topology = settings.consumer.topology();
        let relay = OutboxRelay::start_publishing(
            db.clone(),
            SERVICE,
            &settings.amqp_url,
            topology,
            settings.relay.clone(),
            log.clone(),
        );
        let store = ProductStore::new(db.clone());
        let stock_keeper = StockKeeper::new(store.clone(), relay, log.clone()).start();
        let catalogue = Catalogue::new(store).start();
        let consumers = ConsumerContext::for_database(&db, log.clone());
        let consumer =
            OrderCreatedConsumer::new(stock_keeper.clone().recipient(), consumers.clone())
                .start_consuming(
                    &settings.amqp_url,
                    topology,
                    QueueNames::new(SERVICE, ORDER_CREATED),
                    settings.consumer,
                );

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let keeper = web::Data::new(stock_keeper.clone());
        let catalogue = web::Data::new(catalogue);
        let health = web::Data::new(consumers.health.clone());
        let staff = web::Data::new(StaffAccess::new(
            settings.admin_token.clone(),
            SERVICE,
            log.clone(),
        ));
        let http_log = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(keeper.clone())
                .app_data(catalogue.clone())
                .app_data(health.clone())
                .app_data(staff.clone())
                .app_data(http_log.clone())
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
            stock_keeper,
            consumer,
            consumers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stock_keeper(&self) -> Addr<StockKeeper> {
        self.stock_keeper.clone()
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
