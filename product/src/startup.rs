//! Wires the product service: the `StockKeeper` behind the consumer of
//! `OrderCreated`, the `Catalogue` behind the reads, and their routes.

use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::web;
use contracts::topology::{Needs, ORDER_CREATED, QueueNames};
use messaging::amqp;
use messaging::consumer::ConsumerContext;
use messaging::outbox::Outbox;
use platform::http::{Api, StaffAccess};
use platform::metrics::Metrics;
use platform::service::{Running, Service};
use slog::Logger;

use crate::SERVICE;
use crate::actors::OrderCreatedConsumer;
use crate::actors::catalogue::Catalogue;
use crate::actors::stock_keeper::{GetStockCounters, StockKeeper};
use crate::config::Settings;
use crate::routes::ProductApi;
use crate::store::ProductStore;

pub struct Application {
    running: Running,
    stock_keeper: Addr<StockKeeper>,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it and for its schema), starts the
    /// actors and serves HTTP. RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let (db, listeners) =
            platform::service::connect_when_schema_is_current(SERVICE, &settings.common, &log)
                .await?;
        let broker = settings.common.amqp();
        let relay =
            platform::service::start_relay(&db, SERVICE, &broker, settings.relay.clone(), &log);
        let store = ProductStore::new(db.clone());
        let stock_keeper = StockKeeper::new(store.clone(), relay.clone(), log.clone()).start();
        let catalogue = Catalogue::new(store).start();
        let consumers =
            ConsumerContext::for_database(SERVICE, &db, &settings.common.consumer, log.clone());
        let metrics = Metrics::default();
        amqp::check_access(&broker, Needs::of(SERVICE), consumers.health.clone(), &log);
        metrics.watch_relay(relay.clone(), Outbox::new(db.clone(), SERVICE));
        let keeper = stock_keeper.clone();
        metrics.watch_counters(
            "reservations_total",
            "Orders the StockKeeper applied (and restocks), by outcome",
            ["outcome"],
            Arc::new(move || {
                let keeper = keeper.clone();
                Box::pin(
                    async move { Some(keeper.send(GetStockCounters).await.ok()?.by_outcome()) },
                )
            }),
        );
        let consumer =
            OrderCreatedConsumer::new(stock_keeper.clone().recipient(), consumers.clone())
                .start_on(amqp::subscribe(
                    &broker,
                    QueueNames::new(SERVICE, ORDER_CREATED),
                    settings.common.consumer.prefetch,
                    consumers.health.clone(),
                    log.clone(),
                ));

        let keeper = web::Data::new(stock_keeper.clone());
        let catalogue = web::Data::new(catalogue);
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
                    .app_data(keeper.clone())
                    .app_data(catalogue.clone())
                    .app_data(staff.clone());
                ProductApi::configure(config);
            },
        )?;
        Ok(Self {
            running,
            stock_keeper,
        })
    }

    pub fn stock_keeper(&self) -> Addr<StockKeeper> {
        self.stock_keeper.clone()
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
