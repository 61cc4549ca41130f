//! The `OrderDesk` accepts orders: each one is stored with its `OrderCreated`
//! event in one transaction (the outbox), so an accepted order is never lost,
//! also while RabbitMQ is down. The `OutboxRelay` publishes the event.

use actix::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use shared::amqp::ORDER_EXCHANGE;
use shared::events::OrderCreated;
use slog::{Logger, info, o, warn};

use crate::actors::outbox_relay::{OutboxRelay, WakeRelay};
use crate::domain::order_request::{OrderRequest, PENDING};
use crate::entity::{orders, outbox};

/// Accept `order`: store it and the event announcing it.
#[derive(Debug, Message)]
#[rtype(result = "Result<OrderCreated, DbErr>")]
pub struct PlaceOrder(pub OrderRequest);

/// How many orders this process accepted, and how many it could not store.
#[derive(Debug, Message)]
#[rtype(result = "OrderCounters")]
pub struct GetOrderCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    pub accepted: u64,
    pub storage_failures: u64,
}

/// Orders and their outbox rows in PostgreSQL.
#[derive(Clone)]
pub struct OrderBook {
    db: DatabaseConnection,
}

impl OrderBook {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn place(&self, order: OrderRequest) -> Result<OrderCreated, DbErr> {
        let event = OrderCreated::new(order.product_id, order.quantity);
        let payload = serde_json::to_string(&event).expect("an OrderCreated always serializes");
        let txn = self.db.begin().await?;
        orders::Entity::insert(orders::ActiveModel {
            id: Set(event.order_id),
            product_id: Set(event.product_id.clone()),
            quantity: Set(i32::try_from(event.quantity).expect("validated quantities fit")),
            status: Set(PENDING.to_string()),
            created_at: Set(event.created_at.into()),
            updated_at: Set(event.created_at.into()),
        })
        .exec_without_returning(&txn)
        .await?;
        outbox::Entity::insert(outbox::ActiveModel {
            event_id: Set(event.event_id),
            exchange: Set(ORDER_EXCHANGE.to_string()),
            payload: Set(payload),
            created_at: Set(event.created_at.into()),
            published_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(event)
    }
}

pub struct OrderDesk {
    book: OrderBook,
    relay: Addr<OutboxRelay>,
    counters: OrderCounters,
    log: Logger,
}

impl OrderDesk {
    pub fn new(book: OrderBook, relay: Addr<OutboxRelay>, log: Logger) -> Self {
        Self {
            book,
            relay,
            counters: OrderCounters::default(),
            log,
        }
    }
}

impl Actor for OrderDesk {
    type Context = Context<Self>;
}

impl Handler<PlaceOrder> for OrderDesk {
    type Result = ResponseActFuture<Self, Result<OrderCreated, DbErr>>;

    fn handle(&mut self, PlaceOrder(order): PlaceOrder, _: &mut Context<Self>) -> Self::Result {
        let book = self.book.clone();
        // Orders are stored concurrently; each is its own transaction.
        Box::pin(
            async move { book.place(order).await }
                .into_actor(self)
                .map(|stored, desk, _| match stored {
                    Ok(event) => {
                        desk.counters.accepted += 1;
                        let log = desk.log.new(o!(
                            "event_id" => event.event_id.to_string(),
                            "order_id" => event.order_id.to_string(),
                        ));
                        info!(log, "order accepted";
                        "product_id" => &event.product_id, "quantity" => event.quantity);
                        // Publish now rather than at the relay's next poll.
                        desk.relay.do_send(WakeRelay);
                        Ok(event)
                    }
                    Err(e) => {
                        desk.counters.storage_failures += 1;
                        warn!(desk.log, "order not accepted: it could not be stored"; "err" => %e);
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
