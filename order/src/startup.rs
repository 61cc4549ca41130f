use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use shared::amqp::AmqpPublisher;
use slog::{Logger, info};

use crate::actors::order_desk::{OrderBook, OrderDesk};
use crate::actors::outbox_relay::{Outbox, OutboxRelay};
use crate::config::Settings;
use crate::routes::{health::health, orders::create_order};

pub const SERVICE: &str = "order";

pub struct Application {
    port: u16,
    server: Server,
    order_desk: Addr<OrderDesk>,
    relay: Addr<OutboxRelay>,
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
        // One connection for the process, not one per request.
        let publisher = AmqpPublisher::new(&settings.amqp_url, "order-publisher", &log);
        let relay = OutboxRelay::new(
            Outbox::new(db.clone()),
            Arc::new(publisher),
            settings.relay.clone(),
            log.clone(),
        )
        .start();
        let order_desk = OrderDesk::new(OrderBook::new(db), relay.clone(), log.clone()).start();

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
            relay,
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
