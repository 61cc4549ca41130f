//! Wires the notification service: the `Mailer` behind the consumers of
//! `OrderCreated` and of the stock events.

use std::sync::Arc;

use actix::{Actor, Addr};
use contracts::topology::{Needs, ORDER_CREATED, QueueNames, STOCK_EVENTS};
use messaging::amqp;
use messaging::consumer::ConsumerContext;
use platform::http::Api;
use platform::metrics::Metrics;
use platform::service::{Running, Service};
use slog::Logger;

use crate::SERVICE;
use crate::actors::mailer::{GetMailerCounters, Mailer, SEND_LEASE};
use crate::actors::{OrderCreatedConsumer, StockEventConsumer};
use crate::config::Settings;
use crate::routes::NotificationApi;
use crate::store::EmailLedger;

pub struct Application {
    running: Running,
    mailer: Addr<Mailer>,
}

impl Application {
    /// Connects to PostgreSQL (waiting for it and for its schema), starts
    /// the actors and serves HTTP; RabbitMQ is reached in the background.
    pub async fn build(settings: Settings, log: Logger) -> anyhow::Result<Self> {
        let (db, listeners) =
            platform::service::connect_when_schema_is_current(SERVICE, &settings.common, &log)
                .await?;
        let broker = settings.common.amqp();
        let ledger = EmailLedger::new(db.clone(), SEND_LEASE);
        let mailer = Mailer::new(ledger, log.clone()).start();
        // One gate for both consumers (the service's); each counts under its queue.
        let consumers =
            ConsumerContext::for_database(SERVICE, &db, &settings.common.consumer, log.clone());
        let metrics = Metrics::default();
        amqp::check_access(&broker, Needs::of(SERVICE), consumers.health.clone(), &log);
        let sender = mailer.clone();
        metrics.watch_counters(
            "emails_total",
            "Emails sent, and duplicates skipped, by kind of email and result",
            ["kind", "result"],
            Arc::new(move || {
                let sender = sender.clone();
                Box::pin(async move {
                    let counters = sender.send(GetMailerCounters).await.ok()?;
                    Some(counters.by_kind_and_result())
                })
            }),
        );
        let subscribe = |feed| {
            amqp::subscribe(
                &broker,
                QueueNames::new(SERVICE, feed),
                settings.common.consumer.prefetch,
                consumers.health.clone(),
                log.clone(),
            )
        };
        let order_consumer =
            OrderCreatedConsumer::new(mailer.clone().recipient(), consumers.clone())
                .start_on(subscribe(ORDER_CREATED));
        let stock_consumer = StockEventConsumer::new(mailer.clone().recipient(), consumers.clone())
            .start_on(subscribe(STOCK_EVENTS));

        let running = Running::start(
            listeners,
            settings.common.http,
            &consumers,
            &metrics,
            vec![order_consumer.recipient(), stock_consumer.recipient()],
            &log,
            NotificationApi::configure,
        )?;
        Ok(Self { running, mailer })
    }

    pub fn mailer(&self) -> Addr<Mailer> {
        self.mailer.clone()
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
