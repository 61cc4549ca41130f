//! The `StockKeeper` owns every stock change: reservations for orders and
//! restocks. One change runs at a time in this process (`AtomicResponse`);
//! across replicas, the conditional UPDATE alone keeps stock from going below
//! zero. Each reservation commits together with its inbox row and the stock
//! event announcing its outcome (the outbox). Reads do not pass through
//! here: they never wait behind a change (see `catalogue`).

use actix::prelude::*;
use contracts::events::OrderCreated;
use foundation::db::bounded;
use foundation::telemetry::event_logger;
use messaging::consumer::{BatchResult, batch_or_each};
use messaging::outbox::relay::{OutboxRelay, WakeRelay};
use slog::{Logger, info};

use crate::domain::catalogue::ProductDetails;
use crate::domain::stock::{self, Reservation, StockCounters};
use crate::store::ProductStore;
use crate::store::StockError;

/// Take the ordered quantities from stock, or reject the orders, in order.
#[derive(Debug, Clone, Message)]
#[rtype(result = "BatchResult<Reservation, StockError>")]
pub struct ReserveStock(pub Vec<OrderCreated>);

impl From<Vec<OrderCreated>> for ReserveStock {
    fn from(events: Vec<OrderCreated>) -> Self {
        Self(events)
    }
}

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

pub struct StockKeeper {
    store: ProductStore,
    relay: Addr<OutboxRelay>,
    counters: StockCounters,
    log: Logger,
}

impl StockKeeper {
    /// `relay` is woken after each committed reservation.
    pub fn new(store: ProductStore, relay: Addr<OutboxRelay>, log: Logger) -> Self {
        Self {
            store,
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
    type Result = AtomicResponse<Self, BatchResult<Reservation, StockError>>;

    fn handle(
        &mut self,
        ReserveStock(orders): ReserveStock,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let logs: Vec<Logger> = orders
            .iter()
            .map(|order| {
                let log = event_logger(
                    &self.log,
                    order.event_id,
                    order.order_id,
                    order.request_id.as_deref(),
                );
                stock::received(order).write(&log);
                log
            })
            .collect();
        let store = self.store.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let reservations = batch_or_each(&orders, async |orders| {
                    bounded(store.reserve_all(orders)).await
                })
                .await;
                (orders, reservations)
            }
            .into_actor(self)
            .map(move |(orders, reservations), keeper, _| {
                let reservations = reservations?;
                for ((order, reservation), log) in orders.iter().zip(&reservations).zip(&logs) {
                    let Ok(reservation) = reservation else {
                        continue;
                    };
                    let effects = stock::after_reservation(order, reservation);
                    keeper.counters.count(effects.count);
                    effects.log.write(log);
                    if effects.wake_relay {
                        keeper.relay.do_send(WakeRelay);
                    }
                }
                Ok(reservations)
            }),
        ))
    }
}

impl Handler<CreateProduct> for StockKeeper {
    type Result = AtomicResponse<Self, Result<ProductDetails, StockError>>;

    fn handle(
        &mut self,
        CreateProduct(product): CreateProduct,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let store = self.store.clone();
        AtomicResponse::new(Box::pin(
            async move { bounded(store.create(product)).await }
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
        let store = self.store.clone();
        AtomicResponse::new(Box::pin(
            async move { bounded(store.restock(&restock.product_id, restock.quantity)).await }
                .into_actor(self)
                .map(|restocked, keeper, _| {
                    if let Ok(Some(product)) = &restocked {
                        keeper.counters.restocks += 1;
                        info!(
                            keeper.log,
                            "Stock for product {} restocked. New stock: {}",
                            product.id,
                            product.stock
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
