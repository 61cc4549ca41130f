//! The product service's queries: stock and catalogue in PostgreSQL, through
//! SeaORM. A plain struct, used by the actors and by tests without actix.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use contracts::events::{OrderCreated, StockEvent};
use contracts::topology::STOCK_EXCHANGE;
use foundation::failure::{Classify, FailureKind};
use messaging::outbox;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::ProductView;
use crate::domain::catalogue::ProductDetails;
use crate::domain::stock::{Demand, Reservation, reserve_in_order};
use crate::entity::{processed_events, products};

/// Why a stock or catalogue change failed.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("product {0:?} already exists")]
    ProductExists(String),
    #[error("the restock would take the stock beyond what can be stored")]
    StockOverflow,
}

impl Classify for StockError {
    fn kind(&self) -> FailureKind {
        match self {
            StockError::Database(e) => e.kind(),
            // Not a consumer's error: a reservation never creates or restocks.
            StockError::ProductExists(_) | StockError::StockOverflow => FailureKind::Poison,
        }
    }
}

/// Records the events of `orders` as processed; answers those recorded now
/// (not before).
async fn record_events<C: ConnectionTrait>(
    txn: &C,
    orders: &[OrderCreated],
) -> Result<HashSet<Uuid>, DbErr> {
    if orders.is_empty() {
        return Ok(HashSet::new());
    }
    let mut insert = Query::insert();
    insert
        .into_table(processed_events::Entity)
        .columns([
            processed_events::Column::EventId,
            processed_events::Column::OrderId,
        ])
        .on_conflict(
            OnConflict::column(processed_events::Column::EventId)
                .do_nothing()
                .to_owned(),
        )
        .returning_col(processed_events::Column::EventId);
    for order in orders {
        insert.values_panic([order.event_id.into(), order.order_id.into()]);
    }
    let rows = txn
        .query_all_raw(txn.get_database_backend().build(&insert))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<Uuid>(0))
        .collect::<Result<_, _>>()
}

fn details(product: products::Model) -> ProductDetails {
    ProductDetails {
        id: product.id,
        name: product.name,
        stock: product.stock,
        price_cents: product.price_cents,
    }
}

#[derive(Clone)]
pub struct ProductStore {
    db: DatabaseConnection,
}

impl ProductStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Applies a batch of orders in one transaction, in delivery order: records
    /// their events (a redelivery finds its event and changes nothing), locks
    /// the products they name, decides each order against the stock as it
    /// runs down, writes the stock back and stages one stock event per order.
    /// All of it commits, or none of it. The row locks make replicas take
    /// turns on a product, and `CHECK (stock >= 0)` backs the decision up.
    pub async fn reserve_all(
        &self,
        orders: &[OrderCreated],
    ) -> Result<Vec<Reservation>, StockError> {
        let txn = self.db.begin().await?;
        let recorded = record_events(&txn, orders).await?;
        let mut seen = HashSet::new();
        let demands: Vec<Demand> = orders
            .iter()
            .map(|order| Demand {
                product_id: &order.product_id,
                quantity: order.quantity,
                // Twice in one batch: the first occurrence is the fresh one.
                fresh: recorded.contains(&order.event_id) && seen.insert(order.event_id),
            })
            .collect();
        let named: BTreeSet<&str> = demands
            .iter()
            .filter(|demand| demand.fresh)
            .map(|demand| demand.product_id)
            .collect();
        let mut stock: HashMap<String, i32> = if named.is_empty() {
            HashMap::new()
        } else {
            products::Entity::find()
                .filter(products::Column::Id.is_in(named))
                // One order of locking, so replicas never deadlock.
                .order_by_asc(products::Column::Id)
                .lock_exclusive()
                .all(&txn)
                .await?
                .into_iter()
                .map(|product| (product.id, product.stock))
                .collect()
        };
        let before = stock.clone();
        let reservations = reserve_in_order(&mut stock, &demands);
        for (id, left) in &stock {
            if before.get(id) != Some(left) {
                products::Entity::update_many()
                    .col_expr(products::Column::Stock, Expr::value(*left))
                    .filter(products::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
            }
        }
        let events: Vec<StockEvent> = orders
            .iter()
            .zip(&reservations)
            .filter(|(_, reservation)| **reservation != Reservation::AlreadyApplied)
            .map(|(order, reservation)| StockEvent::answering(order, reservation.rejection()))
            .collect();
        outbox::stage(&txn, SERVICE, STOCK_EXCHANGE, &events).await?;
        txn.commit().await?;
        Ok(reservations)
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
