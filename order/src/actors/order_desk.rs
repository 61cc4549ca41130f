//! The `OrderDesk` owns the orders. Each accepted order is stored with its
//! `OrderCreated` event in one transaction (the outbox), so it is never lost,
//! also while RabbitMQ is down; the `OutboxRelay` publishes the event. Stock
//! outcomes from the product service move orders to `confirmed` or
//! `rejected`.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, TryInsertResult,
};
use serde::Serialize;
use shared::amqp::ORDER_EXCHANGE;
use shared::db::bounded;
use shared::events::{Event, OrderCreated, StockEvent};
use shared::outbox::{self, relay::OutboxRelay, relay::WakeRelay};
use slog::{Logger, info, o, warn};
use uuid::Uuid;

use crate::domain::order_request::OrderRequest;
use crate::domain::order_status::{ForbiddenTransition, OrderStatus, Transition};
use crate::entity::{idempotency_keys, orders};
use crate::startup::SERVICE;

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub status: OrderStatus,
    /// Why a rejected order was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<orders::Model> for OrderView {
    fn from(order: orders::Model) -> Self {
        Self {
            order_id: order.id,
            product_id: order.product_id,
            quantity: u32::try_from(order.quantity).unwrap_or(0),
            customer_email: order.customer_email,
            status: OrderStatus::parse(&order.status).unwrap_or(OrderStatus::Pending),
            reason: order.reason,
            created_at: order.created_at.with_timezone(&Utc),
            updated_at: order.updated_at.with_timezone(&Utc),
        }
    }
}

/// Accept `order`, once per `idempotency_key` when one is given.
#[derive(Debug, Message)]
#[rtype(result = "Result<Placed, PlaceError>")]
pub struct PlaceOrder {
    pub order: OrderRequest,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Created(OrderView),
    /// The same request came with this key before: its order, unchanged.
    Replayed(OrderView),
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("this Idempotency-Key was used with a different order")]
    KeyReused,
    #[error(transparent)]
    Storage(#[from] DbErr),
    /// COMMIT failed: the order may or may not be stored.
    #[error("the database did not confirm the commit: {0}")]
    OutcomeUnknown(DbErr),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeApplied {
    Moved(OrderStatus),
    AlreadyThere,
    /// Not an order of ours; acknowledged and logged.
    UnknownOrder,
    /// Contradicts a final status; acknowledged and logged.
    Forbidden(ForbiddenTransition),
}

/// What the desk has done so far.
#[derive(Debug, Message)]
#[rtype(result = "OrderCounters")]
pub struct GetOrderCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    pub accepted: u64,
    pub replayed: u64,
    pub storage_failures: u64,
    pub confirmed: u64,
    pub rejected: u64,
}

/// Orders, their idempotency keys and their outbox rows in PostgreSQL.
#[derive(Clone)]
pub struct OrderBook {
    db: DatabaseConnection,
}

impl OrderBook {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn place(
        &self,
        order: OrderRequest,
        idempotency_key: Option<String>,
    ) -> Result<Placed, PlaceError> {
        let fingerprint = order.fingerprint();
        let event = OrderCreated {
            customer_email: order.customer_email,
            ..OrderCreated::new(order.product_id, order.quantity)
        };
        let now = event.created_at.into();
        let row = orders::Model {
            id: event.order_id,
            product_id: event.product_id.clone(),
            quantity: i32::try_from(event.quantity).expect("validated quantities fit"),
            customer_email: event.customer_email.clone(),
            status: OrderStatus::Pending.as_str().to_string(),
            reason: None,
            created_at: now,
            updated_at: now,
        };
        // Each step is bounded: on a network that swallows packets the order
        // fails instead of hanging. Up to the commit, a failure means nothing
        // was stored; a commit that got no answer leaves the outcome open.
        let staged = bounded(async {
            let txn = self.db.begin().await?;
            orders::Entity::insert(orders::ActiveModel::from(row.clone()))
                .exec_without_returning(&txn)
                .await?;
            if let Some(key) = &idempotency_key {
                let claimed = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
                    key: Set(key.clone()),
                    fingerprint: Set(fingerprint.clone()),
                    order_id: Set(event.order_id),
                    created_at: Set(now),
                })
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await?;
                if !matches!(claimed, TryInsertResult::Inserted(1)) {
                    // Seen before (a concurrent first use has committed by now).
                    txn.rollback().await?;
                    return Ok(None);
                }
            }
            outbox::stage(&txn, SERVICE, ORDER_EXCHANGE, event.event_id, &event).await?;
            Ok::<_, DbErr>(Some(txn))
        })
        .await?;
        let Some(txn) = staged else {
            // Only a key seen before stages nothing.
            let key = idempotency_key.as_deref().unwrap_or_default();
            return bounded(self.replay(key, &fingerprint)).await;
        };
        bounded(txn.commit())
            .await
            .map_err(PlaceError::OutcomeUnknown)?;
        Ok(Placed::Created(row.into()))
    }

    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Placed, PlaceError> {
        let earlier = idempotency_keys::Entity::find_by_id(key.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("idempotency key {key}")))?;
        if earlier.fingerprint != fingerprint {
            return Err(PlaceError::KeyReused);
        }
        let order = self
            .get(earlier.order_id)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("order {}", earlier.order_id)))?;
        Ok(Placed::Replayed(order))
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<OrderView>, DbErr> {
        Ok(orders::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(OrderView::from))
    }

    pub async fn list(&self, query: &ListOrders) -> Result<Vec<OrderView>, DbErr> {
        let mut select = orders::Entity::find()
            .order_by_asc(orders::Column::Id)
            .limit(query.limit);
        if let Some(status) = query.status {
            select = select.filter(orders::Column::Status.eq(status.as_str()));
        }
        if let Some(after) = query.after {
            select = select.filter(orders::Column::Id.gt(after));
        }
        Ok(select
            .all(&self.db)
            .await?
            .into_iter()
            .map(OrderView::from)
            .collect())
    }

    pub async fn record_outcome(&self, event: &StockEvent) -> Result<OutcomeApplied, DbErr> {
        let to = OrderStatus::after_stock_outcome(event.rejection());
        let txn = self.db.begin().await?;
        let Some(order) = orders::Entity::find_by_id(event.order_id())
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Ok(OutcomeApplied::UnknownOrder);
        };
        let from = OrderStatus::parse(&order.status).unwrap_or(OrderStatus::Pending);
        let applied = match from.transition(to) {
            Ok(Transition::To(status)) => {
                orders::Entity::update(orders::ActiveModel {
                    id: Set(order.id),
                    status: Set(status.as_str().to_string()),
                    reason: Set(event.rejection().map(|r| r.as_str().to_string())),
                    updated_at: Set(Utc::now().into()),
                    ..Default::default()
                })
                .exec(&txn)
                .await?;
                OutcomeApplied::Moved(status)
            }
            Ok(Transition::AlreadyThere) => OutcomeApplied::AlreadyThere,
            Err(forbidden) => OutcomeApplied::Forbidden(forbidden),
        };
        txn.commit().await?;
        Ok(applied)
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
    type Result = ResponseActFuture<Self, Result<Placed, PlaceError>>;

    fn handle(&mut self, request: PlaceOrder, _: &mut Context<Self>) -> Self::Result {
        let book = self.book.clone();
        // Orders are stored concurrently; each is its own transaction.
        Box::pin(
            async move { book.place(request.order, request.idempotency_key).await }
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
        let book = self.book.clone();
        Box::pin(async move { bounded(book.get(id)).await })
    }
}

impl Handler<ListOrders> for OrderDesk {
    type Result = ResponseFuture<Result<Vec<OrderView>, DbErr>>;

    fn handle(&mut self, query: ListOrders, _: &mut Context<Self>) -> Self::Result {
        let book = self.book.clone();
        Box::pin(async move { bounded(book.list(&query)).await })
    }
}

impl Handler<RecordStockOutcome> for OrderDesk {
    type Result = ResponseActFuture<Self, Result<OutcomeApplied, DbErr>>;

    fn handle(
        &mut self,
        RecordStockOutcome(event): RecordStockOutcome,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let book = self.book.clone();
        let log = self.log.new(o!(
            "event_id" => event.event_id().to_string(),
            "order_id" => event.order_id().to_string(),
        ));
        Box::pin(
            async move {
                bounded(book.record_outcome(&event))
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
