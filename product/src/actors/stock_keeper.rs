//! The `StockKeeper` owns every stock change: reservations for orders and
//! restocks. One change runs at a time in this process (`AtomicResponse`);
//! across replicas, the conditional UPDATE alone keeps stock from going below
//! zero. Each reservation commits together with its inbox row and the stock
//! event announcing its outcome (the outbox).

use std::collections::BTreeMap;

use actix::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    SqlErr, TransactionTrait, TryInsertResult,
};
use shared::amqp::STOCK_EXCHANGE;
use shared::events::{OrderCreated, StockEvent};
use shared::outbox::{self, relay::OutboxRelay, relay::WakeRelay};
use slog::{Logger, info, o, warn};

use crate::domain::catalogue::ProductDetails;
use crate::domain::{ProductView, StockOutcome, stock_quantity};
use crate::entity::{processed_events, products};
use crate::error::StockError;

/// The outbox rows of this service carry this source.
pub const OUTBOX_SOURCE: &str = "product";

/// Take the ordered quantity from stock, or reject the order.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<StockOutcome, StockError>")]
pub struct ReserveStock(pub OrderCreated);

impl From<OrderCreated> for ReserveStock {
    fn from(event: OrderCreated) -> Self {
        Self(event)
    }
}

/// Every product with its current stock, keyed by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<BTreeMap<String, ProductView>, StockError>")]
pub struct ListProducts;

/// One product.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ProductDetails>, StockError>")]
pub struct GetProduct(pub String);

/// Add a product to the catalogue.
#[derive(Debug, Message)]
#[rtype(result = "Result<ProductDetails, StockError>")]
pub struct CreateProduct(pub ProductDetails);

/// Add `quantity` to the stock of `product_id`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ProductDetails>, StockError>")]
pub struct Restock {
    pub product_id: String,
    pub quantity: i32,
}

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
    pub restocks: u64,
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

fn details(product: products::Model) -> ProductDetails {
    ProductDetails {
        id: product.id,
        name: product.name,
        stock: product.stock,
        price_cents: product.price_cents,
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

    /// Records the event, applies the reservation and stages the stock event
    /// in one transaction: all of it commits, or none of it.
    pub async fn reserve(&self, order: &OrderCreated) -> Result<StockOutcome, StockError> {
        let txn = self.db.begin().await?;
        let recorded = processed_events::Entity::insert(processed_events::ActiveModel {
            event_id: Set(order.event_id),
            order_id: Set(order.order_id),
            ..Default::default()
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        if !matches!(recorded, TryInsertResult::Inserted(1)) {
            txn.rollback().await?;
            return Ok(StockOutcome::AlreadyApplied);
        }
        let quantity = stock_quantity(order.quantity);
        let updated = products::Entity::update_many()
            .col_expr(
                products::Column::Stock,
                Expr::col(products::Column::Stock).sub(quantity),
            )
            .filter(products::Column::Id.eq(&order.product_id))
            .filter(products::Column::Stock.gte(quantity))
            .exec_with_returning(&txn)
            .await?;
        let current = match updated.first() {
            Some(_) => None,
            None => products::Entity::find_by_id(&order.product_id)
                .one(&txn)
                .await?
                .map(|product| product.stock),
        };
        let outcome = StockOutcome::from_update(updated.first().map(|p| p.stock), current);
        let event = StockEvent::answering(order, outcome.rejection());
        outbox::stage(
            &txn,
            OUTBOX_SOURCE,
            STOCK_EXCHANGE,
            event.outcome().event_id,
            &event,
        )
        .await?;
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

    pub async fn get(&self, id: &str) -> Result<Option<ProductDetails>, StockError> {
        Ok(products::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(details))
    }

    pub async fn create(&self, product: ProductDetails) -> Result<ProductDetails, StockError> {
        let inserted = products::Entity::insert(products::ActiveModel {
            id: Set(product.id.clone()),
            name: Set(product.name.clone()),
            stock: Set(product.stock),
            price_cents: Set(product.price_cents),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(product),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StockError::ProductExists(product.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn restock(
        &self,
        id: &str,
        quantity: i32,
    ) -> Result<Option<ProductDetails>, StockError> {
        let updated = products::Entity::update_many()
            .col_expr(
                products::Column::Stock,
                Expr::col(products::Column::Stock).add(quantity),
            )
            .filter(products::Column::Id.eq(id))
            // The column is a 32-bit integer: refuse rather than overflow.
            .filter(products::Column::Stock.lte(i32::MAX - quantity))
            .exec_with_returning(&self.db)
            .await?;
        if let Some(product) = updated.into_iter().next() {
            return Ok(Some(details(product)));
        }
        match self.get(id).await? {
            Some(_) => Err(StockError::StockOverflow),
            None => Ok(None),
        }
    }
}

pub struct StockKeeper {
    inventory: Inventory,
    relay: Addr<OutboxRelay>,
    counters: StockCounters,
    log: Logger,
}

impl StockKeeper {
    /// `relay` is woken after each committed reservation.
    pub fn new(inventory: Inventory, relay: Addr<OutboxRelay>, log: Logger) -> Self {
        Self {
            inventory,
            relay,
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

    fn handle(&mut self, ReserveStock(order): ReserveStock, _: &mut Context<Self>) -> Self::Result {
        let log = self.log.new(o!(
            "event_id" => order.event_id.to_string(),
            "order_id" => order.order_id.to_string(),
        ));
        info!(log, "[x] PRODUCT: Received order for product: {}", order.product_id;
            "quantity" => order.quantity);
        let inventory = self.inventory.clone();
        AtomicResponse::new(Box::pin(
            async move {
                inventory
                    .reserve(&order)
                    .await
                    .map(|outcome| (order, outcome))
            }
            .into_actor(self)
            .map(move |result, keeper, _| {
                let (order, outcome) = result?;
                keeper.counters.count(&outcome);
                log_outcome(&log, &order, &outcome);
                if outcome != StockOutcome::AlreadyApplied {
                    keeper.relay.do_send(WakeRelay);
                }
                Ok(outcome)
            }),
        ))
    }
}

fn log_outcome(log: &Logger, order: &OrderCreated, outcome: &StockOutcome) {
    let product = &order.product_id;
    match outcome {
        StockOutcome::Reserved { new_stock } => {
            info!(
                log,
                "Stock for product {product} reduced. New stock: {new_stock}"
            )
        }
        StockOutcome::OutOfStock { available } => warn!(log,
            "Order rejected: product {product} is out of stock";
            "requested" => order.quantity, "available" => available),
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

impl Handler<GetProduct> for StockKeeper {
    type Result = ResponseFuture<Result<Option<ProductDetails>, StockError>>;

    fn handle(&mut self, GetProduct(id): GetProduct, _: &mut Context<Self>) -> Self::Result {
        let inventory = self.inventory.clone();
        Box::pin(async move { inventory.get(&id).await })
    }
}

impl Handler<CreateProduct> for StockKeeper {
    type Result = AtomicResponse<Self, Result<ProductDetails, StockError>>;

    fn handle(
        &mut self,
        CreateProduct(product): CreateProduct,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let inventory = self.inventory.clone();
        AtomicResponse::new(Box::pin(
            async move { inventory.create(product).await }
                .into_actor(self)
                .map(|created, keeper, _| {
                    if let Ok(product) = &created {
                        info!(keeper.log, "product created";
                            "product_id" => &product.id, "stock" => product.stock);
                    }
                    created
                }),
        ))
    }
}

impl Handler<Restock> for StockKeeper {
    type Result = AtomicResponse<Self, Result<Option<ProductDetails>, StockError>>;

    fn handle(&mut self, restock: Restock, _: &mut Context<Self>) -> Self::Result {
        let inventory = self.inventory.clone();
        AtomicResponse::new(Box::pin(
            async move {
                inventory
                    .restock(&restock.product_id, restock.quantity)
                    .await
            }
            .into_actor(self)
            .map(|restocked, keeper, _| {
                if let Ok(Some(product)) = &restocked {
                    keeper.counters.restocks += 1;
                    info!(
                        keeper.log,
                        "Stock for product {} restocked. New stock: {}", product.id, product.stock
                    );
                }
                restocked
            }),
        ))
    }
}

impl Handler<GetStockCounters> for StockKeeper {
    type Result = MessageResult<GetStockCounters>;

    fn handle(&mut self, _: GetStockCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
