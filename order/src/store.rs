//! The order service's queries: orders, their idempotency keys and their
//! outbox rows in PostgreSQL, through SeaORM. A plain struct, used by the
//! `OrderDesk` and by tests without actix.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Utc;
use contracts::events::{Event, OrderCreated, StockEvent};
use contracts::topology::ORDER_EXCHANGE;
use foundation::db::{bounded, failure_kind, rolled_back_by_server};
use foundation::failure::FailureKind;
use messaging::outbox;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::order::PlaceError as Refusal;
use crate::domain::order::{OrderView, OutcomeApplied, Placed, apply_outcomes};
use crate::domain::order_request::{IdempotencyKey, OrderRequest};
use crate::domain::order_status::OrderStatus;
use crate::entity::{idempotency_keys, orders};

/// Why an order was not stored, or may not have been, with the database's
/// own error where there is one.
pub type PlaceError = Refusal<DbErr>;

impl From<DbErr> for PlaceError {
    fn from(e: DbErr) -> Self {
        Refusal::Storage(e)
    }
}

/// How often a group rolled back by the server (deadlock, serialization
/// failure) is run before its requests are answered `503`.
const ROLLBACK_ATTEMPTS: u32 = 3;

/// An order to place, with its idempotency key if the client gave one.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order: OrderRequest,
    pub key: Option<IdempotencyKey>,
    pub request_id: Option<String>,
}

/// A request turned into its row and its event.
struct Prepared {
    fingerprint: String,
    event: OrderCreated,
    row: orders::Model,
}

impl Prepared {
    fn new(request: &NewOrder) -> Self {
        let order = &request.order;
        let event = OrderCreated {
            customer_email: order
                .customer_email
                .as_ref()
                .map(|email| email.as_str().to_owned()),
            request_id: request.request_id.clone(),
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
        Self {
            fingerprint: order.fingerprint(),
            event,
            row,
        }
    }
}

/// The answer to a request whose key an earlier request of its group used.
fn follow(leader: &Result<Placed, PlaceError>, same_body: bool) -> Result<Placed, PlaceError> {
    if !same_body {
        return Err(PlaceError::KeyReused);
    }
    match leader {
        Ok(Placed::Created(order) | Placed::Replayed(order)) => Ok(Placed::Replayed(order.clone())),
        Err(e) => Err(e.clone()),
    }
}

/// Claims the keys of the group's leaders; answers the keys claimed now
/// (the others were claimed by earlier orders).
async fn claim_keys<C: ConnectionTrait>(
    txn: &C,
    requests: &[NewOrder],
    prepared: &[Prepared],
    leader_of: &[Option<usize>],
) -> Result<HashSet<String>, DbErr> {
    let mut keys: Vec<idempotency_keys::ActiveModel> = requests
        .iter()
        .zip(prepared)
        .zip(leader_of)
        .filter(|(_, follower)| follower.is_none())
        .filter_map(|((request, prepared), _)| {
            let key = request.key.as_ref()?;
            Some(idempotency_keys::ActiveModel {
                key: Set(key.as_str().to_owned()),
                fingerprint: Set(prepared.fingerprint.clone()),
                order_id: Set(prepared.event.order_id),
                created_at: Set(prepared.row.created_at),
            })
        })
        .collect();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    // One order of taking keys for every replica: groups holding the same
    // keys then wait for each other instead of deadlocking.
    keys.sort_by(|a, b| a.key.try_as_ref().cmp(&b.key.try_as_ref()));
    let mut insert = Query::insert();
    insert
        .into_table(idempotency_keys::Entity)
        .columns([
            idempotency_keys::Column::Key,
            idempotency_keys::Column::Fingerprint,
            idempotency_keys::Column::OrderId,
            idempotency_keys::Column::CreatedAt,
        ])
        .on_conflict(
            OnConflict::column(idempotency_keys::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .returning_col(idempotency_keys::Column::Key);
    for key in keys {
        insert.values_panic([
            key.key.unwrap().into(),
            key.fingerprint.unwrap().into(),
            key.order_id.unwrap().into(),
            key.created_at.unwrap().into(),
        ]);
    }
    txn.query_all_raw(txn.get_database_backend().build(&insert))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

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

    /// Stores a group of orders with their `OrderCreated` events in one
    /// transaction (a group commit), each once per idempotency key when it
    /// has one. Each request gets its own answer: a key used before replays
    /// its order (or is refused with another body); a failure before the
    /// commit stored nothing; a commit that got no answer leaves the outcome
    /// open. A failure that is not an outage is retried request by request,
    /// so that one bad row fails only its own request.
    pub async fn place_all(&self, requests: &[NewOrder]) -> Vec<Result<Placed, PlaceError>> {
        match self.place_together_retrying(requests).await {
            Ok(placed) => placed,
            Err(e) if requests.len() > 1 && failure_kind(&e) != FailureKind::Outage => {
                let mut placed = Vec::with_capacity(requests.len());
                for request in requests {
                    placed.push(
                        match self
                            .place_together_retrying(std::slice::from_ref(request))
                            .await
                        {
                            Ok(mut alone) => alone.remove(0),
                            Err(e) => Err(PlaceError::Storage(e)),
                        },
                    );
                }
                placed
            }
            Err(e) => requests
                .iter()
                .map(|_| Err(PlaceError::Storage(e.clone())))
                .collect(),
        }
    }

    /// [`Self::place_together`], again when the server rolled the group
    /// back to break a deadlock (or a serialization conflict) with another
    /// replica: nothing was stored, and a second run usually passes.
    async fn place_together_retrying(
        &self,
        requests: &[NewOrder],
    ) -> Result<Vec<Result<Placed, PlaceError>>, DbErr> {
        let mut attempt = 1;
        loop {
            match self.place_together(requests).await {
                Err(e) if attempt < ROLLBACK_ATTEMPTS && rolled_back_by_server(&e) => attempt += 1,
                placed => return placed,
            }
        }
    }

    /// `Err`: the group failed before its commit, and nothing was stored.
    async fn place_together(
        &self,
        requests: &[NewOrder],
    ) -> Result<Vec<Result<Placed, PlaceError>>, DbErr> {
        let prepared: Vec<Prepared> = requests.iter().map(Prepared::new).collect();
        // A key twice in the group: the first request places, the others follow it.
        let mut leaders: HashMap<&str, usize> = HashMap::new();
        let leader_of: Vec<Option<usize>> = requests
            .iter()
            .enumerate()
            .map(|(index, request)| {
                let key = request.key.as_ref()?.as_str();
                let leader = *leaders.entry(key).or_insert(index);
                (leader != index).then_some(leader)
            })
            .collect();
        // Each step is bounded: on a network that swallows packets the group
        // fails instead of hanging.
        let (txn, claimed) = bounded(async {
            let txn = self.db.begin().await?;
            let claimed = claim_keys(&txn, requests, &prepared, &leader_of).await?;
            let placing: Vec<&Prepared> = prepared
                .iter()
                .zip(requests)
                .zip(&leader_of)
                .filter(|((_, request), follower)| {
                    follower.is_none()
                        && request
                            .key
                            .as_ref()
                            .is_none_or(|key| claimed.contains(key.as_str()))
                })
                .map(|((prepared, _), _)| prepared)
                .collect();
            if !placing.is_empty() {
                orders::Entity::insert_many(
                    placing
                        .iter()
                        .map(|prepared| orders::ActiveModel::from(prepared.row.clone())),
                )
                .exec_without_returning(&txn)
                .await?;
                outbox::stage(
                    &txn,
                    SERVICE,
                    ORDER_EXCHANGE,
                    placing.iter().map(|prepared| &prepared.event),
                )
                .await?;
            }
            Ok::<_, DbErr>((txn, claimed))
        })
        .await?;
        let committed = bounded(txn.commit()).await;
        let mut answers: Vec<Result<Placed, PlaceError>> = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let this = &prepared[index];
            let answer = match (&request.key, leader_of[index]) {
                (Some(_), Some(leader)) => follow(
                    &answers[leader],
                    this.fingerprint == prepared[leader].fingerprint,
                ),
                (Some(key), None) if !claimed.contains(key.as_str()) => {
                    // Used before, by an order committed earlier.
                    bounded(self.replay(key.as_str(), &this.fingerprint)).await
                }
                _ => match &committed {
                    Ok(()) => Ok(Placed::Created(view(this.row.clone()))),
                    Err(e) => Err(PlaceError::OutcomeUnknown(e.clone())),
                },
            };
            answers.push(answer);
        }
        Ok(answers)
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
