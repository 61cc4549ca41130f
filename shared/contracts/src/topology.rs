//! The names of every exchange and queue of the system, who publishes and
//! who subscribes to what, and so what each service's broker user may do.
//! Declaring them is the messaging crate's (`messaging::amqp::Topology`).

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
    /// at the end of one of its own queues (parking):
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
}
