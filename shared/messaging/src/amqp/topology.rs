//! Every exchange, queue and binding of the system, and what each service
//! may do on them. The topology is declared by a setup step with the rights
//! to do so (the `topology` command, run before the services start: compose
//! and the Kubernetes Job run it), never by the services, whose broker
//! users may neither configure nor declare anything.
//!
//! It must all exist before the first order is published: an order placed
//! before the product service ever connected would reach a fanout exchange
//! with no product queue bound, and `mandatory` fails only when *no* queue
//! is bound, so notification would get the event and product never would.

use contracts::topology::{ORDER_EXCHANGE, QueueNames, STOCK_EXCHANGE, SUBSCRIPTIONS};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use super::amqp_reply_code;

/// The whole topology, with the settings fixed when a queue is first declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Redeliveries of one message before its queue dead-letters it
    /// (`AMQP_DELIVERY_LIMIT` of the `topology` command, default 10). A
    /// queue argument: fixed when the queue is first declared (change it
    /// later with a RabbitMQ policy).
    pub delivery_limit: u16,
}

impl Default for Topology {
    fn default() -> Self {
        Self { delivery_limit: 10 }
    }
}

impl Topology {
    /// Declares everything; idempotent. Runs on a channel of its own, since
    /// a refused declaration closes the channel it was made on.
    pub async fn declare(&self, connection: &Connection) -> lapin::Result<()> {
        let channel = connection.create_channel().await?;
        for exchange in [ORDER_EXCHANGE, STOCK_EXCHANGE] {
            declare_fanout(&channel, exchange).await?;
        }
        let mut channel = channel;
        for queues in SUBSCRIPTIONS {
            declare_exchange(&channel, &queues.park_exchange(), ExchangeKind::Direct).await?;
            declare_fanout(&channel, &queues.dead_letter_exchange()).await?;
            channel = declare_queue(
                connection,
                channel,
                &queues.dead_letter_queue(),
                quorum_arguments(),
            )
            .await?;
            bind(
                &channel,
                &queues.dead_letter_queue(),
                &queues.dead_letter_exchange(),
                "",
            )
            .await?;
            channel = declare_queue(
                connection,
                channel,
                &queues.work_queue(),
                self.work_queue_arguments(&queues),
            )
            .await?;
            bind(&channel, &queues.work_queue(), queues.feed.exchange, "").await?;
            bind(
                &channel,
                &queues.work_queue(),
                &queues.park_exchange(),
                &queues.work_queue(),
            )
            .await?;
        }
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    fn work_queue_arguments(&self, queues: &QueueNames) -> FieldTable {
        let mut arguments = quorum_arguments();
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(self.delivery_limit.into()),
        );
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(queues.dead_letter_exchange().as_str().into()),
        );
        arguments
    }
}

/// Quorum queues are replicated on a cluster and count deliveries, which is
/// what bounds retries of a message that keeps failing.
fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

async fn declare_fanout(channel: &Channel, name: &str) -> lapin::Result<()> {
    declare_exchange(channel, name, ExchangeKind::Fanout).await
}

async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares a durable queue. One that exists with other arguments (declared
/// earlier with another `AMQP_DELIVERY_LIMIT`) is used as it is: the
/// refusal closed the channel, so the declaration goes on on a new one.
async fn declare_queue(
    connection: &Connection,
    channel: Channel,
    name: &str,
    arguments: FieldTable,
) -> lapin::Result<Channel> {
    match channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
        .await
    {
        Ok(_) => Ok(channel),
        Err(e) if amqp_reply_code(&e) == Some(PRECONDITION_FAILED) => {
            let channel = connection.create_channel().await?;
            look_up_queue(&channel, name).await?;
            Ok(channel)
        }
        Err(e) => Err(e),
    }
}

const PRECONDITION_FAILED: u16 = 406;

/// Whether queue `name` exists (a passive declaration, which needs no
/// permission; NOT_FOUND closes the channel if not).
pub(super) async fn look_up_queue(channel: &Channel, name: &str) -> lapin::Result<()> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), passive, FieldTable::default())
        .await
        .map(|_| ())
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::topology::STOCK_EVENTS;

    #[test]
    fn work_queues_are_quorum_queues_with_a_delivery_limit_and_a_dead_letter_exchange() {
        let arguments = Topology { delivery_limit: 7 }
            .work_queue_arguments(&QueueNames::new("order", STOCK_EVENTS));
        let get = |key: &str| {
            arguments
                .inner()
                .iter()
                .find(|(k, _)| k.as_str() == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("x-queue-type"),
            Some(AMQPValue::LongString("quorum".into()))
        );
        assert_eq!(get("x-delivery-limit"), Some(AMQPValue::LongLongInt(7)));
        assert_eq!(
            get("x-dead-letter-exchange"),
            Some(AMQPValue::LongString("order.dlx".into()))
        );
    }
}
