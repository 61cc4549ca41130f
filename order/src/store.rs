//! The order service's queries: orders, their idempotency keys and their
//! outbox rows in PostgreSQL, through SeaORM. A plain struct, used by the
//! `OrderDesk` and by tests without actix.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, TryInsertResult,
};
use shared::amqp::ORDER_EXCHANGE;
use shared::db::bounded;
use shared::events::{Event, OrderCreated, StockEvent};
use shared::outbox;
use uuid::Uuid;

use crate::domain::order::{OrderView, OutcomeApplied, Placed, apply_outcomes};
use crate::domain::order_request::{IdempotencyKey, OrderRequest};
use crate::domain::order_status::OrderStatus;
use crate::entity::{idempotency_keys, orders};
use crate::error::PlaceError;
use crate::startup::SERVICE;

fn view(order: orders::Model) -> OrderView {
    OrderView {
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

#[derive(Clone)]
pub struct OrderStore {
    db: DatabaseConnection,
}

impl OrderStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores the order and its `OrderCreated` event in one transaction,
    /// once per `idempotency_key` when one is given.
    pub async fn place(
        &self,
        order: OrderRequest,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Placed, PlaceError> {
        let fingerprint = order.fingerprint();
        let event = OrderCreated {
            customer_email: order.customer_email.map(|email| email.as_str().to_owned()),
            ..OrderCreated::new(order.product_id.as_str().to_owned(), order.quantity.get())
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
                    key: Set(key.as_str().to_owned()),
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
            let key = idempotency_key.as_ref().map_or("", IdempotencyKey::as_str);
            return bounded(self.replay(key, &fingerprint)).await;
        };
        bounded(txn.commit())
            .await
            .map_err(PlaceError::OutcomeUnknown)?;
        Ok(Placed::Created(view(row)))
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
            .map(view))
    }

    /// Up to `limit` orders, oldest first: those after `after`, with
    /// `status` if given.
    pub async fn list(
        &self,
        status: Option<OrderStatus>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<OrderView>, DbErr> {
        let mut select = orders::Entity::find()
            .order_by_asc(orders::Column::Id)
            .limit(limit);
        if let Some(status) = status {
            select = select.filter(orders::Column::Status.eq(status.as_str()));
        }
        if let Some(after) = after {
            select = select.filter(orders::Column::Id.gt(after));
        }
        Ok(select.all(&self.db).await?.into_iter().map(view).collect())
    }

    /// Moves the order `event` is about to its final status, if it may move.
    /// Applies a batch of stock outcomes in one transaction, in delivery
    /// order, to the orders they are about (locked for the time of it).
    pub async fn record_outcomes(
        &self,
        events: &[StockEvent],
    ) -> Result<Vec<OutcomeApplied>, DbErr> {
        let txn = self.db.begin().await?;
        let ids: BTreeSet<Uuid> = events.iter().map(Event::order_id).collect();
        let mut current: HashMap<Uuid, OrderStatus> = orders::Entity::find()
            .filter(orders::Column::Id.is_in(ids))
            .order_by_asc(orders::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?
            .into_iter()
            .map(|order| {
                let status = OrderStatus::parse(&order.status).unwrap_or(OrderStatus::Pending);
                (order.id, status)
            })
            .collect();
        let outcomes: Vec<_> = events
            .iter()
            .map(|event| (event.order_id(), event.rejection()))
            .collect();
        let applied = apply_outcomes(&mut current, &outcomes);
        // One statement per final status and reason, for all orders moved there.
        let mut moved: BTreeMap<(&str, Option<&str>), Vec<Uuid>> = BTreeMap::new();
        for ((order_id, rejection), applied) in outcomes.iter().zip(&applied) {
            if let OutcomeApplied::Moved(status) = applied {
                let reason = rejection.map(|r| r.as_str());
                moved
                    .entry((status.as_str(), reason))
                    .or_default()
                    .push(*order_id);
            }
        }
        for ((status, reason), ids) in moved {
            orders::Entity::update_many()
                .col_expr(orders::Column::Status, Expr::value(status))
                .col_expr(orders::Column::Reason, Expr::value(reason))
                .col_expr(orders::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(orders::Column::Id.is_in(ids))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(applied)
    }
}
