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

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use super::amqp_reply_code;

/// Fanout exchange receiving one `OrderCreated` per accepted order.
pub const ORDER_EXCHANGE: &str = "order_exchange";
/// Fanout exchange receiving one `StockReserved` or `StockRejected` per order.
pub const STOCK_EXCHANGE: &str = "stock_exchange";

/// A stream of events a service can subscribe to: the exchange, and the
/// suffix of each subscriber's queue (`<service>.<suffix>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    pub exchange: &'static str,
    pub queue_suffix: &'static str,
}

pub const ORDER_CREATED: Feed = Feed {
    exchange: ORDER_EXCHANGE,
    queue_suffix: "order_created",
};
pub const STOCK_EVENTS: Feed = Feed {
    exchange: STOCK_EXCHANGE,
    queue_suffix: "stock_events",
};

/// Who publishes what: each exchange has one publishing service.
pub const PUBLISHERS: [(&str, &str); 2] = [("order", ORDER_EXCHANGE), ("product", STOCK_EXCHANGE)];

/// Every service with a broker user of its own.
pub const SERVICES: [&str; 3] = ["order", "product", "notification"];

/// Who subscribes to what: every queue of the system.
pub const SUBSCRIPTIONS: [QueueNames; 4] = [
    QueueNames::new("product", ORDER_CREATED),
    QueueNames::new("notification", ORDER_CREATED),
    QueueNames::new("order", STOCK_EVENTS),
    QueueNames::new("notification", STOCK_EVENTS),
];

/// The names around one subscription: its work queue, and the dead-letter
/// exchange and queue of the subscribing service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueNames {
    pub service: &'static str,
    pub feed: Feed,
}

impl QueueNames {
    pub const fn new(service: &'static str, feed: Feed) -> Self {
        Self { service, feed }
    }

    pub fn work_queue(&self) -> String {
        format!("{}.{}", self.service, self.feed.queue_suffix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.service)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.service)
    }

    /// The direct exchange through which the service puts a message back
    /// at the end of one of its own queues (parking, [`super::delivery`]):
    /// each of its work queues is bound under its own name. Publishing to
    /// the default exchange instead would let a service's user write to
    /// every queue of the vhost.
    pub fn park_exchange(&self) -> String {
        format!("{}.park", self.service)
    }
}

/// What a service's broker user needs: the exchanges it publishes to (its
/// events, and its parking exchange if it consumes) and the queues it
/// consumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub service: &'static str,
    pub publishes: Vec<String>,
    pub consumes: Vec<String>,
}

impl Needs {
    pub fn of(service: &'static str) -> Self {
        let mut publishes: Vec<String> = PUBLISHERS
            .iter()
            .filter(|(publisher, _)| *publisher == service)
            .map(|(_, exchange)| exchange.to_string())
            .collect();
        let subscriptions: Vec<QueueNames> = SUBSCRIPTIONS
            .into_iter()
            .filter(|queues| queues.service == service)
            .collect();
        if let Some(queues) = subscriptions.first() {
            publishes.push(queues.park_exchange());
        }
        Self {
            service,
            publishes,
            consumes: subscriptions.iter().map(QueueNames::work_queue).collect(),
        }
    }

    /// RabbitMQ's permissions for these needs, as regular expressions
    /// anchored on exact names: configure nothing (no declaring, deleting
    /// or binding), write only to its exchanges, read only its queues.
    pub fn permissions(&self) -> Permissions {
        Permissions {
            configure: "^$".into(),
            write: exactly(&self.publishes),
            read: exactly(&self.consumes),
        }
    }
}

/// A broker user's permissions on a vhost, as the management API takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// The broker user of `service` (`ecommerce_order`, ...): the same name as
/// its PostgreSQL role.
pub fn user_of(service: &str) -> String {
    format!("ecommerce_{service}")
}

/// A regular expression matching exactly `names`, or nothing.
fn exactly(names: &[String]) -> String {
    if names.is_empty() {
        return "^$".into();
    }
    let escaped: Vec<String> = names.iter().map(|name| regex_escape(name)).collect();
    format!("^({})$", escaped.join("|"))
}

fn regex_escape(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

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

    #[test]
    fn names_each_queue_after_its_service_and_feed() {
        let queues = QueueNames::new("product", ORDER_CREATED);
        assert_eq!(queues.work_queue(), "product.order_created");
        assert_eq!(queues.dead_letter_exchange(), "product.dlx");
        assert_eq!(queues.dead_letter_queue(), "product.dead");
    }

    #[test]
    fn each_service_may_write_only_its_events_and_its_parking_and_read_only_its_queues() {
        let order = Needs::of("order").permissions();
        assert_eq!(order.configure, "^$");
        assert_eq!(order.write, r"^(order_exchange|order\.park)$");
        assert_eq!(order.read, r"^(order\.stock_events)$");

        let notification = Needs::of("notification").permissions();
        assert_eq!(notification.write, r"^(notification\.park)$");
        assert_eq!(
            notification.read,
            r"^(notification\.order_created|notification\.stock_events)$"
        );

        let product = Needs::of("product");
        assert_eq!(product.publishes, ["stock_exchange", "product.park"]);
        assert_eq!(product.consumes, ["product.order_created"]);
    }

    #[test]
    fn every_exchange_has_a_subscriber_and_every_queue_is_distinct() {
        let queues: std::collections::BTreeSet<_> =
            SUBSCRIPTIONS.iter().map(QueueNames::work_queue).collect();
        assert_eq!(queues.len(), SUBSCRIPTIONS.len());
        for exchange in [ORDER_EXCHANGE, STOCK_EXCHANGE] {
            assert!(
                SUBSCRIPTIONS.iter().any(|q| q.feed.exchange == exchange),
                "{exchange} has no subscriber"
            );
        }
    }

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
