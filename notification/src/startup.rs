use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::{self, ConsumerQueues};
use shared::consumer::ConsumerStats;
use slog::{Logger, info};

use crate::actors::AmqpConsumer;
use crate::actors::mailer::{Mailer, SentLedger};
use crate::config::Settings;
use crate::routes::health::health;

pub const SERVICE: &str = "notification";

pub struct Application {
    port: u16,
    server: Server,
    mailer: Addr<Mailer>,
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
        let consumer_stats = Arc::new(ConsumerStats::default());
        let deliveries = amqp::consume(
            settings.amqp_url.clone(),
            ConsumerQueues::new(SERVICE),
            settings.prefetch,
            log.clone(),
        );
        let consumer = AmqpConsumer::new(
            mailer.clone().recipient(),
            consumer_stats.clone(),
            log.clone(),
        );
        AmqpConsumer::create(|ctx| {
            ctx.add_stream(deliveries);
            consumer
        });

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(|| App::new().route("/health", web::get().to(health)))
            .listen(listener)?
            // Requests in flight get a few seconds to finish on SIGTERM.
            .shutdown_timeout(5)
            .run();
        info!(log, "listening"; "http_addr" => %settings.http_addr, "port" => port);
        Ok(Self {
            port,
            server,
            mailer,
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
