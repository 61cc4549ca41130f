use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::AmqpPublisher;
use slog::{Logger, info};

use crate::actors::order_desk::OrderDesk;
use crate::config::Settings;
use crate::routes::{health::health, orders::create_order};

pub const SERVICE: &str = "order";

pub struct Application {
    port: u16,
    server: Server,
    order_desk: Addr<OrderDesk>,
}

impl Application {
    /// Waits for PostgreSQL and RabbitMQ, migrates, starts the actors and
    /// binds the HTTP listener.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let db = shared::db::connect(&settings.database_url, &log).await;
        migration::migrate(&db)
            .await
            .context("applying database migrations")?;
        // One connection for the process, opened once: not one per request.
        let publisher = AmqpPublisher::connect(&settings.amqp_url, "order-publisher", &log).await;
        let order_desk = OrderDesk::new(Arc::new(publisher), log.clone()).start();

        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let desk = web::Data::new(order_desk.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(desk.clone())
                .route("/create_order", web::post().to(create_order))
                .route("/health", web::get().to(health))
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
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn order_desk(&self) -> Addr<OrderDesk> {
        self.order_desk.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
