use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use anyhow::Context as _;
use shared::amqp::{ORDER_EVENTS, STOCK_EVENTS};
use shared::consumer::{ConsumerStats, DRAIN_TIMEOUT, Drain};
use slog::{Logger, info};

use crate::actors::mailer::{Mailer, SentLedger};
use crate::actors::{AmqpConsumer, StockEventConsumer};
use crate::config::Settings;
use crate::routes;

pub const SERVICE: &str = "notification";

pub struct Application {
    port: u16,
    server: Server,
    mailer: Addr<Mailer>,
    consumer: Addr<AmqpConsumer>,
    stock_consumer: Addr<StockEventConsumer>,
    consumer_stats: Arc<ConsumerStats>,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it), migrates, starts the actors
    /// and binds the HTTP listener; RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        let mailer = Mailer::new(SentLedger::new(db), log.clone()).start();
        // One set of counters for both consumers: the service's.
        let consumer_stats = Arc::new(ConsumerStats::default());
        let consumer = AmqpConsumer::new(
            mailer.clone().recipient(),
            consumer_stats.clone(),
            log.clone(),
        )
        .start_consuming(&settings.amqp_url, SERVICE, ORDER_EVENTS, settings.consumer);
        let stock_consumer = StockEventConsumer::new(
            mailer.clone().recipient(),
            consumer_stats.clone(),
            log.clone(),
        )
        .start_consuming(&settings.amqp_url, SERVICE, STOCK_EVENTS, settings.consumer);

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(|| App::new().configure(routes::configure))
            .listen(listener)?
            // Requests in flight get a few seconds to finish on SIGTERM.
            .shutdown_timeout(5)
            .run();
        info!(log, "listening"; "http_addr" => %settings.http_addr, "port" => port);
        Ok(Self {
            port,
            server,
            mailer,
            consumer,
            stock_consumer,
            consumer_stats,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn mailer(&self) -> Addr<Mailer> {
        self.mailer.clone()
    }

    pub fn consumer_stats(&self) -> Arc<ConsumerStats> {
        self.consumer_stats.clone()
    }

    /// Serves until SIGTERM or SIGINT, then lets the deliveries in flight
    /// finish (those still running after a few seconds are redelivered).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let drain = || Drain {
            timeout: DRAIN_TIMEOUT,
        };
        let _ = futures_util::future::join(
            self.consumer.send(drain()),
            self.stock_consumer.send(drain()),
        )
        .await;
        Ok(())
    }
}
