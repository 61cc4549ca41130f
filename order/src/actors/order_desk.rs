//! The `OrderDesk` turns an accepted order into an `OrderCreated` event and
//! publishes it; it answers only once the broker has confirmed the event.

use std::sync::Arc;

use actix::prelude::*;
use shared::amqp::ORDER_EXCHANGE;
use shared::broker::{BrokerError, OutgoingMessage, Publisher};
use shared::events::OrderCreated;
use slog::{Logger, info, o, warn};

use crate::domain::order_request::OrderRequest;

/// Accept `order` and announce it.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderCreated, BrokerError>")]
pub struct PlaceOrder(pub OrderRequest);

/// How many orders this process published, and how many it could not.
#[derive(Debug, Message)]
#[rtype(result = "OrderCounters")]
pub struct GetOrderCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    pub published: u64,
    pub publish_failures: u64,
}

pub struct OrderDesk {
    publisher: Arc<dyn Publisher>,
    counters: OrderCounters,
    log: Logger,
}

impl OrderDesk {
    pub fn new(publisher: Arc<dyn Publisher>, log: Logger) -> Self {
        Self {
            publisher,
            counters: OrderCounters::default(),
            log,
        }
    }
}

impl Actor for OrderDesk {
    type Context = Context<Self>;
}

impl Handler<PlaceOrder> for OrderDesk {
    type Result = ResponseActFuture<Self, Result<OrderCreated, BrokerError>>;

    fn handle(&mut self, PlaceOrder(order): PlaceOrder, _: &mut Context<Self>) -> Self::Result {
        let event = OrderCreated::new(order.product_id, order.quantity);
        let message = OutgoingMessage {
            exchange: ORDER_EXCHANGE.to_string(),
            message_id: event.event_id.to_string(),
            body: serde_json::to_vec(&event).expect("an OrderCreated always serializes"),
        };
        let log = self.log.new(o!(
            "event_id" => event.event_id.to_string(),
            "order_id" => event.order_id.to_string(),
        ));
        // Publishes run concurrently: confirms from the broker are awaited in
        // parallel rather than one order at a time.
        Box::pin(
            self.publisher
                .publish(message)
                .into_actor(self)
                .map(move |published, desk, _| match published {
                    Ok(()) => {
                        desk.counters.published += 1;
                        info!(log, "order created and published";
                        "product_id" => &event.product_id, "quantity" => event.quantity);
                        Ok(event)
                    }
                    Err(e) => {
                        desk.counters.publish_failures += 1;
                        warn!(log, "order not accepted: publishing failed"; "err" => %e);
                        Err(e)
                    }
                }),
        )
    }
}

impl Handler<GetOrderCounters> for OrderDesk {
    type Result = MessageResult<GetOrderCounters>;

    fn handle(&mut self, _: GetOrderCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}

#[cfg(test)]
mod tests {
    use shared::broker::memory::InMemoryBroker;
    use shared::events::decode_order_created;
    use shared::telemetry::test_logger;

    use super::*;

    #[actix::test]
    async fn publishes_one_order_created_per_order() {
        // Arrange
        let broker = InMemoryBroker::new();
        let desk = OrderDesk::new(Arc::new(broker.clone()), test_logger()).start();
        let order = OrderRequest {
            product_id: "456".into(),
            quantity: 2,
        };

        // Act
        let event = desk.send(PlaceOrder(order)).await.unwrap().unwrap();

        // Assert
        let published = broker.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].exchange, "order_exchange");
        assert_eq!(published[0].message_id, event.event_id.to_string());
        let on_the_wire = decode_order_created(&published[0].body).unwrap();
        assert_eq!(on_the_wire, event);
        assert_eq!(
            (on_the_wire.product_id.as_str(), on_the_wire.quantity),
            ("456", 2)
        );
        let counters = desk.send(GetOrderCounters).await.unwrap();
        assert_eq!(
            counters,
            OrderCounters {
                published: 1,
                publish_failures: 0
            }
        );
    }

    #[actix::test]
    async fn reports_a_broker_that_refuses_the_event() {
        let broker = InMemoryBroker::new();
        broker.refuse_publishes(true);
        let desk = OrderDesk::new(Arc::new(broker.clone()), test_logger()).start();

        let result = desk
            .send(PlaceOrder(OrderRequest::default()))
            .await
            .unwrap();

        assert!(matches!(result, Err(BrokerError::Unavailable(_))));
        assert!(broker.published().is_empty());
        let counters = desk.send(GetOrderCounters).await.unwrap();
        assert_eq!(
            counters,
            OrderCounters {
                published: 0,
                publish_failures: 1
            }
        );
    }
}
