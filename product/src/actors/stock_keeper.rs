//! The `StockKeeper` owns every stock change. One change runs at a time in
//! this process (`AtomicResponse`); across replicas, the conditional UPDATE
//! alone keeps stock from going below zero.

use std::collections::BTreeMap;

use actix::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait, TryInsertResult,
};
use shared::events::OrderCreated;
use slog::{Logger, info, o, warn};
use uuid::Uuid;

use crate::domain::{ProductView, StockOutcome, stock_quantity};
use crate::entity::{processed_events, products};
use crate::error::StockError;

/// Take `quantity` of `product_id` from stock for the order behind `event_id`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<StockOutcome, StockError>")]
pub struct ReserveStock {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
}

impl From<OrderCreated> for ReserveStock {
    fn from(event: OrderCreated) -> Self {
        Self {
            event_id: event.event_id,
            order_id: event.order_id,
            product_id: event.product_id,
            quantity: event.quantity,
        }
    }
}

/// Every product with its current stock, keyed by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<BTreeMap<String, ProductView>, StockError>")]
pub struct ListProducts;

/// How many reservations this process has decided, by outcome.
#[derive(Debug, Message)]
#[rtype(result = "StockCounters")]
pub struct GetStockCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockCounters {
    pub reserved: u64,
    pub out_of_stock: u64,
    pub unknown_product: u64,
    pub already_applied: u64,
}

impl StockCounters {
    fn count(&mut self, outcome: &StockOutcome) {
        let counter = match outcome {
            StockOutcome::Reserved { .. } => &mut self.reserved,
            StockOutcome::OutOfStock { .. } => &mut self.out_of_stock,
            StockOutcome::UnknownProduct => &mut self.unknown_product,
            StockOutcome::AlreadyApplied => &mut self.already_applied,
        };
        *counter += 1;
    }
}

/// Stock in PostgreSQL, through SeaORM.
#[derive(Clone)]
pub struct Inventory {
    db: DatabaseConnection,
}

impl Inventory {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records the event and applies the reservation in one transaction, so
    /// the stock change and "this event is done" commit together or not at all.
    pub async fn reserve(&self, request: &ReserveStock) -> Result<StockOutcome, StockError> {
        let txn = self.db.begin().await?;
        let recorded = processed_events::Entity::insert(processed_events::ActiveModel {
            event_id: Set(request.event_id),
            order_id: Set(request.order_id),
            ..Default::default()
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        if !matches!(recorded, TryInsertResult::Inserted(1)) {
            txn.rollback().await?;
            return Ok(StockOutcome::AlreadyApplied);
        }
        let quantity = stock_quantity(request.quantity);
        let updated = products::Entity::update_many()
            .col_expr(
                products::Column::Stock,
                Expr::col(products::Column::Stock).sub(quantity),
            )
            .filter(products::Column::Id.eq(&request.product_id))
            .filter(products::Column::Stock.gte(quantity))
            .exec_with_returning(&txn)
            .await?;
        let current = match updated.first() {
            Some(_) => None,
            None => products::Entity::find_by_id(&request.product_id)
                .one(&txn)
                .await?
                .map(|product| product.stock),
        };
        let outcome = StockOutcome::from_update(updated.first().map(|p| p.stock), current);
        txn.commit().await?;
        Ok(outcome)
    }

    pub async fn list(&self) -> Result<BTreeMap<String, ProductView>, StockError> {
        let products = products::Entity::find()
            .order_by_asc(products::Column::Id)
            .all(&self.db)
            .await?;
        Ok(products
            .into_iter()
            .map(|p| {
                (
                    p.id,
                    ProductView {
                        name: p.name,
                        stock: p.stock,
                    },
                )
            })
            .collect())
    }
}

pub struct StockKeeper {
    inventory: Inventory,
    counters: StockCounters,
    log: Logger,
}

impl StockKeeper {
    pub fn new(inventory: Inventory, log: Logger) -> Self {
        Self {
            inventory,
            counters: StockCounters::default(),
            log,
        }
    }
}

impl Actor for StockKeeper {
    type Context = Context<Self>;
}

impl Handler<ReserveStock> for StockKeeper {
    type Result = AtomicResponse<Self, Result<StockOutcome, StockError>>;

    fn handle(&mut self, request: ReserveStock, _: &mut Context<Self>) -> Self::Result {
        let log = self.log.new(o!(
            "event_id" => request.event_id.to_string(),
            "order_id" => request.order_id.to_string(),
        ));
        info!(log, "[x] PRODUCT: Received order for product: {}", request.product_id;
            "quantity" => request.quantity);
        let inventory = self.inventory.clone();
        AtomicResponse::new(Box::pin(
            async move {
                inventory
                    .reserve(&request)
                    .await
                    .map(|outcome| (request, outcome))
            }
            .into_actor(self)
            .map(move |result, keeper, _| {
                let (request, outcome) = result?;
                keeper.counters.count(&outcome);
                log_outcome(&log, &request, &outcome);
                Ok(outcome)
            }),
        ))
    }
}

fn log_outcome(log: &Logger, request: &ReserveStock, outcome: &StockOutcome) {
    let product = &request.product_id;
    match outcome {
        StockOutcome::Reserved { new_stock } => {
            info!(
                log,
                "Stock for product {product} reduced. New stock: {new_stock}"
            )
        }
        StockOutcome::OutOfStock { available } => warn!(log,
            "Order rejected: product {product} is out of stock";
            "requested" => request.quantity, "available" => available),
        StockOutcome::UnknownProduct => {
            warn!(log, "Order rejected: product {product} does not exist")
        }
        StockOutcome::AlreadyApplied => {
            info!(log, "Order already applied, ignoring the redelivery")
        }
    }
}

impl Handler<ListProducts> for StockKeeper {
    type Result = ResponseFuture<Result<BTreeMap<String, ProductView>, StockError>>;

    fn handle(&mut self, _: ListProducts, _: &mut Context<Self>) -> Self::Result {
        let inventory = self.inventory.clone();
        // Reads need not wait behind stock changes.
        Box::pin(async move { inventory.list().await })
    }
}

impl Handler<GetStockCounters> for StockKeeper {
    type Result = MessageResult<GetStockCounters>;

    fn handle(&mut self, _: GetStockCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
