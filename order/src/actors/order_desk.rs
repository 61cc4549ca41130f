//! The `OrderDesk` owns the orders. Each accepted order is stored with its
//! `OrderCreated` event in one transaction (the outbox), so it is never lost,
//! also while RabbitMQ is down; the `OutboxRelay` publishes the event. Stock
//! outcomes from the product service move orders to `confirmed` or
//! `rejected`.

use actix::prelude::*;
use sea_orm::DbErr;
use shared::db::bounded;
use shared::events::{Event, StockEvent};
use shared::outbox::relay::{OutboxRelay, WakeRelay};
use slog::{Logger, info, o, warn};
use uuid::Uuid;

use crate::domain::order::{OrderCounters, OrderView, OutcomeApplied, Placed};
use crate::domain::order_request::OrderRequest;
use crate::domain::order_status::OrderStatus;
use crate::error::PlaceError;
use crate::store::OrderStore;

/// Accept `order`, once per `idempotency_key` when one is given.
#[derive(Debug, Message)]
#[rtype(result = "Result<Placed, PlaceError>")]
pub struct PlaceOrder {
    pub order: OrderRequest,
    pub idempotency_key: Option<String>,
}

/// One order by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<OrderView>, DbErr>")]
pub struct GetOrder(pub Uuid);

/// A page of orders, oldest first: those after `after`, with `status` if given.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<OrderView>, DbErr>")]
pub struct ListOrders {
    pub status: Option<OrderStatus>,
    pub after: Option<Uuid>,
    pub limit: u64,
}

/// Move the order a stock outcome is about to its final status.
#[derive(Debug, Message)]
#[rtype(result = "Result<OutcomeApplied, DbErr>")]
pub struct RecordStockOutcome(pub StockEvent);

impl From<StockEvent> for RecordStockOutcome {
    fn from(event: StockEvent) -> Self {
        Self(event)
    }
}

/// What the desk has done so far.
#[derive(Debug, Message)]
#[rtype(result = "OrderCounters")]
pub struct GetOrderCounters;

pub struct OrderDesk {
    store: OrderStore,
    relay: Addr<OutboxRelay>,
    counters: OrderCounters,
    log: Logger,
}

impl OrderDesk {
    pub fn new(store: OrderStore, relay: Addr<OutboxRelay>, log: Logger) -> Self {
        Self {
            store,
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
    type Result = ResponseActFuture<Self, Result<Placed, PlaceError>>;

    fn handle(&mut self, request: PlaceOrder, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        // Orders are stored concurrently; each is its own transaction.
        Box::pin(
            async move { store.place(request.order, request.idempotency_key).await }
                .into_actor(self)
                .map(|placed, desk, _| {
                    match &placed {
                        Ok(Placed::Created(order)) => {
                            desk.counters.accepted += 1;
                            info!(desk.log, "order accepted";
                                "order_id" => order.order_id.to_string(),
                                "product_id" => &order.product_id, "quantity" => order.quantity);
                            // Publish now rather than at the relay's next poll.
                            desk.relay.do_send(WakeRelay);
                        }
                        Ok(Placed::Replayed(order)) => {
                            desk.counters.replayed += 1;
                            info!(desk.log, "order request replayed with its Idempotency-Key";
                                "order_id" => order.order_id.to_string());
                        }
                        Err(PlaceError::KeyReused) => {}
                        Err(PlaceError::Storage(e)) => {
                            desk.counters.storage_failures += 1;
                            warn!(desk.log, "order not accepted: it could not be stored"; "err" => %e);
                        }
                        Err(PlaceError::OutcomeUnknown(e)) => {
                            desk.counters.storage_failures += 1;
                            warn!(desk.log, "order outcome unknown: the commit was not confirmed"; "err" => %e);
                        }
                    }
                    placed
                }),
        )
    }
}

impl Handler<GetOrder> for OrderDesk {
    type Result = ResponseFuture<Result<Option<OrderView>, DbErr>>;

    fn handle(&mut self, GetOrder(id): GetOrder, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.get(id)).await })
    }
}

impl Handler<ListOrders> for OrderDesk {
    type Result = ResponseFuture<Result<Vec<OrderView>, DbErr>>;

    fn handle(&mut self, query: ListOrders, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.list(query.status, query.after, query.limit)).await })
    }
}

impl Handler<RecordStockOutcome> for OrderDesk {
    type Result = ResponseActFuture<Self, Result<OutcomeApplied, DbErr>>;

    fn handle(
        &mut self,
        RecordStockOutcome(event): RecordStockOutcome,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let store = self.store.clone();
        let log = self.log.new(o!(
            "event_id" => event.event_id().to_string(),
            "order_id" => event.order_id().to_string(),
        ));
        Box::pin(
            async move {
                bounded(store.record_outcome(&event))
                    .await
                    .map(|applied| (event, applied))
            }
                .into_actor(self)
                .map(move |recorded, desk, _| {
                    let (event, applied) = recorded?;
                    match applied {
                        OutcomeApplied::Moved(OrderStatus::Confirmed) => {
                            desk.counters.confirmed += 1;
                            info!(log, "order confirmed");
                        }
                        OutcomeApplied::Moved(status) => {
                            desk.counters.rejected += 1;
                            info!(log, "order {}", status.as_str();
                                "reason" => event.rejection().map(|r| r.as_str()));
                        }
                        OutcomeApplied::AlreadyThere => info!(log, "stock outcome already recorded"),
                        OutcomeApplied::UnknownOrder => warn!(log, "stock outcome for an unknown order, ignored"),
                        OutcomeApplied::Forbidden(forbidden) => {
                            warn!(log, "stock outcome contradicts the order's status, ignored"; "err" => %forbidden)
                        }
                    }
                    Ok(applied)
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
