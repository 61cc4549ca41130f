//! Wires the order service: the `OrderDesk` behind intake and the consumer
//! of stock events, the outbox relay, and their routes.

use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::web;
use contracts::topology::{Needs, QueueNames, STOCK_EVENTS};
use messaging::amqp;
use messaging::consumer::ConsumerContext;
use messaging::outbox::Outbox;
use messaging::outbox::relay::OutboxRelay;
use platform::http::{Api, StaffAccess};
use platform::metrics::Metrics;
use platform::rate_limit::ClientLimit;
use platform::service::{Running, Service};
use slog::Logger;

use crate::SERVICE;
use crate::actors::StockEventConsumer;
use crate::actors::order_desk::{GetOrderCounters, Intake, OrderDesk};
use crate::config::Settings;
use crate::routes::OrderApi;
use crate::routes::params::query_error;
use crate::store::OrderStore;

pub struct Application {
    running: Running,
    order_desk: Addr<OrderDesk>,
    relay: Addr<OutboxRelay>,
}

impl Application {
    /// Waits for PostgreSQL and its schema, starts the actors and serves
    /// HTTP. Orders are accepted while RabbitMQ is down: the relay
    /// publishes them once it is reachable.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let (db, listeners) =
            platform::service::connect_when_schema_is_current(SERVICE, &settings.common, &log)
                .await?;
        let broker = settings.common.amqp();
        let relay =
            platform::service::start_relay(&db, SERVICE, &broker, settings.relay.clone(), &log);
        let consumers =
            ConsumerContext::for_database(SERVICE, &db, &settings.common.consumer, log.clone());
        let metrics = Metrics::default();
        amqp::check_access(&broker, Needs::of(SERVICE), consumers.health.clone(), &log);
        let order_desk = OrderDesk::new(
            OrderStore::new(db.clone()),
            relay.clone(),
            Intake {
                max_group: settings.intake_group,
                max_waiting: settings.intake_queue,
                database: consumers.gate.clone(),
            },
            metrics.pipeline_histogram(
                "order_accept_to_final_seconds",
                "Time from an order's acceptance to its final status",
            ),
            log.clone(),
        )
        .start();
        metrics.watch_relay(relay.clone(), Outbox::new(db.clone(), SERVICE));
        let desk = order_desk.clone();
        metrics.watch_counters(
            "orders_total",
            "Orders queued for a commit, accepted, replayed by key, not stored, confirmed, rejected, refused at once and abandoned by their callers",
            ["event"],
            Arc::new(move || {
                let desk = desk.clone();
                Box::pin(async move { Some(desk.send(GetOrderCounters).await.ok()?.by_event()) })
            }),
        );
        let intake_limit = web::Data::new(ClientLimit::new(
            settings.order_rate_limit,
            settings.trusted_proxies.clone(),
            "order intake",
            &log,
        ));
        let limit = intake_limit.clone();
        metrics.watch_counters(
            "http_rate_limited_total",
            "Requests refused with 429 because their client was over its rate limit, by limit",
            ["limit"],
            Arc::new(move || {
                let refused = limit.refused();
                Box::pin(async move { Some(vec![(["order_intake"], refused)]) })
            }),
        );
        let consumer = StockEventConsumer::new(order_desk.clone().recipient(), consumers.clone())
            .start_on(amqp::subscribe(
                &broker,
                QueueNames::new(SERVICE, STOCK_EVENTS),
                settings.common.consumer.prefetch,
                consumers.health.clone(),
                log.clone(),
            ));

        let desk = web::Data::new(order_desk.clone());
        let staff = web::Data::new(StaffAccess::new(
            settings.admin_token.clone(),
            SERVICE,
            log.clone(),
        ));
        let running = Running::start(
            listeners,
            settings.common.http,
            &consumers,
            &metrics,
            vec![consumer.recipient()],
            &log,
            move |config| {
                config
                    .app_data(desk.clone())
                    .app_data(staff.clone())
                    .app_data(intake_limit.clone())
                    .app_data(web::QueryConfig::default().error_handler(query_error));
                OrderApi::configure(config);
            },
        )?;
        Ok(Self {
            running,
            order_desk,
            relay,
        })
    }

    pub fn order_desk(&self) -> Addr<OrderDesk> {
        self.order_desk.clone()
    }

    pub fn relay(&self) -> Addr<OutboxRelay> {
        self.relay.clone()
    }
}

impl Service for Application {
    fn running(&self) -> &Running {
        &self.running
    }

    fn into_running(self) -> Running {
        self.running
    }
}
