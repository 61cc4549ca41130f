//! The transactional outbox: a service stores the events it owes the world
//! in the same transaction as the change that caused them ([`stage`]); the
//! [`relay::OutboxRelay`] publishes them. Several services may share one
//! database: each row names the service it belongs to (column `source`) and
//! each relay publishes only its own.

pub mod entity;
pub mod relay;
pub mod schedule;
pub mod store;

pub use store::Outbox;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use serde::Serialize;

use crate::events::Event;

/// Adds `events` to the outbox of `service`, inside the caller's
/// transaction, in one statement; each row keeps its event's id and the id
/// of the request behind it.
pub async fn stage<'a, C: ConnectionTrait, E: Serialize + Event + 'a>(
    txn: &C,
    service: &str,
    exchange: &str,
    events: impl IntoIterator<Item = &'a E>,
) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    // The relay publishes oldest first: a microsecond apart (the column's
    // precision), the rows of one batch keep the order they were staged in
    // rather than tie.
    let rows: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| entity::ActiveModel {
            event_id: Set(event.event_id()),
            source: Set(service.to_string()),
            exchange: Set(exchange.to_string()),
            payload: Set(serde_json::to_string(event).expect("events always serialize")),
            created_at: Set((now + chrono::TimeDelta::microseconds(i as i64)).into()),
            published_at: Set(None),
            claimed_until: Set(None),
            request_id: Set(event.request_id().map(str::to_string)),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    entity::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
