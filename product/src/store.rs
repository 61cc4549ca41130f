//! The product service's queries: stock and catalogue in PostgreSQL, through
//! SeaORM. A plain struct, used by the actors and by tests without actix.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    SqlErr, TransactionTrait, TryInsertResult,
};
use shared::amqp::STOCK_EXCHANGE;
use shared::events::{OrderCreated, StockEvent};
use shared::outbox;

use crate::domain::ProductView;
use crate::domain::catalogue::ProductDetails;
use crate::domain::stock::{Reservation, stock_quantity};
use crate::entity::{processed_events, products};
use crate::error::StockError;
use crate::startup::SERVICE;

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

    /// Records the event, applies the reservation and stages the stock event
    /// in one transaction: all of it commits, or none of it.
    pub async fn reserve(&self, order: &OrderCreated) -> Result<Reservation, StockError> {
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
            return Ok(Reservation::AlreadyApplied);
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
        let reservation = Reservation::from_update(updated.first().map(|p| p.stock), current);
        let event = StockEvent::answering(order, reservation.rejection());
        outbox::stage(
            &txn,
            SERVICE,
            STOCK_EXCHANGE,
            event.outcome().event_id,
            &event,
        )
        .await?;
        txn.commit().await?;
        Ok(reservation)
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
