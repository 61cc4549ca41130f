use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::{ORDER_EVENTS, STOCK_EXCHANGE};
use shared::consumer::{ConsumerStats, DRAIN_TIMEOUT, Drain};
use shared::http::StaffAccess;
use shared::outbox::relay::OutboxRelay;
use slog::{Logger, info};

use crate::actors::AmqpConsumer;
use crate::actors::stock_keeper::{Inventory, OUTBOX_SOURCE, StockKeeper};
use crate::config::Settings;
use crate::routes;

pub const SERVICE: &str = "product";

pub struct Application {
    port: u16,
    server: Server,
    stock_keeper: Addr<StockKeeper>,
    consumer: Addr<AmqpConsumer>,
    consumer_stats: Arc<ConsumerStats>,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it), migrates, starts the actors and
    /// binds the HTTP listener. RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        let relay = OutboxRelay::start_publishing(
            db.clone(),
            OUTBOX_SOURCE,
            &[STOCK_EXCHANGE],
            &settings.amqp_url,
            settings.relay.clone(),
            log.clone(),
        );
        let stock_keeper = StockKeeper::new(Inventory::new(db), relay, log.clone()).start();
        let consumer_stats = Arc::new(ConsumerStats::default());
        let consumer = AmqpConsumer::new(
            stock_keeper.clone().recipient(),
            consumer_stats.clone(),
            log.clone(),
        )
        .start_consuming(&settings.amqp_url, SERVICE, ORDER_EVENTS, settings.consumer);

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let keeper = web::Data::new(stock_keeper.clone());
        let staff = web::Data::new(StaffAccess::new(
            settings.admin_token.clone(),
            SERVICE,
            log.clone(),
        ));
        let http_log = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(keeper.clone())
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
            consumer_stats,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stock_keeper(&self) -> Addr<StockKeeper> {
        self.stock_keeper.clone()
    }

    pub fn consumer_stats(&self) -> Arc<ConsumerStats> {
        self.consumer_stats.clone()
    }

    /// Serves until SIGTERM or SIGINT, then lets the deliveries in flight
    /// finish (those still running after a few seconds are redelivered).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let _ = self
            .consumer
            .send(Drain {
                timeout: DRAIN_TIMEOUT,
            })
            .await;
        Ok(())
    }
}
