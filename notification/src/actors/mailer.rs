//! The `Mailer` "sends" the purchase email. Sending is simulated by a log
//! line until an SMTP provider is wired in.

use std::convert::Infallible;

use actix::prelude::*;
use shared::events::OrderCreated;
use slog::{Logger, info, o};
use uuid::Uuid;

/// Email the customer about the purchase behind `event_id`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Infallible>")]
pub struct SendEmail {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
}

impl From<OrderCreated> for SendEmail {
    fn from(event: OrderCreated) -> Self {
        Self {
            event_id: event.event_id,
            order_id: event.order_id,
            product_id: event.product_id,
            quantity: event.quantity,
        }
    }
}

/// How many emails this process has sent.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct CountSentEmails;

pub struct Mailer {
    sent: u64,
    log: Logger,
}

impl Mailer {
    pub fn new(log: Logger) -> Self {
        Self { sent: 0, log }
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;
}

impl Handler<SendEmail> for Mailer {
    type Result = Result<(), Infallible>;

    fn handle(&mut self, email: SendEmail, _: &mut Context<Self>) -> Self::Result {
        let log = self.log.new(o!(
            "event_id" => email.event_id.to_string(),
            "order_id" => email.order_id.to_string(),
        ));
        info!(log, "[x] NOTIFICATION: 'Sending email' for purchased product: {}", email.product_id;
            "quantity" => email.quantity);
        self.sent += 1;
        Ok(())
    }
}

impl Handler<CountSentEmails> for Mailer {
    type Result = u64;

    fn handle(&mut self, _: CountSentEmails, _: &mut Context<Self>) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use shared::broker::Settlement;
    use shared::broker::memory::InMemoryBroker;
    use shared::consumer::ConsumerStats;
    use shared::telemetry::test_logger;

    use super::*;
    use crate::actors::AmqpConsumer;

    #[actix::test]
    async fn each_order_created_sends_one_email_and_is_acked() {
        // Arrange
        let broker = InMemoryBroker::new();
        let mailer = Mailer::new(test_logger()).start();
        let events: Vec<_> = (0..3).map(|_| OrderCreated::new("123".into(), 1)).collect();
        let mut deliveries: Vec<_> = events
            .iter()
            .map(|e| {
                broker.delivery(
                    serde_json::to_vec(e).unwrap(),
                    Some(&e.event_id.to_string()),
                )
            })
            .collect();
        deliveries.insert(1, broker.delivery("[1, 2, 3]", Some("garbage")));

        // Act
        let consumer = AmqpConsumer::new(
            mailer.clone().recipient(),
            Arc::new(ConsumerStats::default()),
            test_logger(),
        );
        AmqpConsumer::create(|ctx| {
            ctx.add_stream(futures_util::stream::iter(deliveries));
            consumer
        });
        let settled = broker.wait_for_settlements(4, Duration::from_secs(5)).await;

        // Assert
        assert_eq!(mailer.send(CountSentEmails).await.unwrap(), 3);
        let acked = settled
            .iter()
            .filter(|(_, s)| *s == Settlement::Ack)
            .count();
        assert_eq!(acked, 3);
        assert!(settled.contains(&(Some("garbage".into()), Settlement::DeadLetter)));
    }
}
