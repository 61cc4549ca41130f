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

use contracts::events::{Event, MAX_EVENT_BYTES};

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
    let rows = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            Ok(entity::ActiveModel {
                event_id: Set(event.event_id()),
                source: Set(service.to_string()),
                exchange: Set(exchange.to_string()),
                payload: Set(payload(event)?),
                created_at: Set((now + chrono::TimeDelta::microseconds(i as i64)).into()),
                published_at: Set(None),
                claimed_until: Set(None),
                request_id: Set(event.request_id().map(str::to_string)),
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    entity::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// The event as JSON, or an error if it is larger than any consumer takes
/// ([`MAX_EVENT_BYTES`]): staged, it would only ever be dead-lettered.
fn payload<E: Serialize + Event>(event: &E) -> Result<String, DbErr> {
    let json = serde_json::to_string(event).expect("events always serialize");
    if json.len() > MAX_EVENT_BYTES {
        return Err(DbErr::Custom(format!(
            "{} event {} is {} bytes, over the {MAX_EVENT_BYTES} bytes an event may have",
            E::NAME,
            event.event_id(),
            json.len()
        )));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::OrderCreated;

    #[test]
    fn an_event_over_the_size_limit_is_refused_with_its_size() {
        let small = OrderCreated::new("123".into(), 1);
        let huge = OrderCreated {
            customer_email: Some("x".repeat(MAX_EVENT_BYTES)),
            ..small.clone()
        };

        assert!(payload(&small).is_ok());
        let error = payload(&huge).unwrap_err().to_string();
        assert!(error.contains(&huge.event_id.to_string()), "{error}");
        assert!(error.contains("over the 1048576 bytes"), "{error}");
    }
}
