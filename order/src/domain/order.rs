//! An order as the service shows it, what storing one or applying a stock
//! outcome to it came to, and what the `OrderDesk` does after each (count
//! it, log it, wake the relay).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use contracts::events::{RejectionReason, StockEvent};
use foundation::telemetry::LogLine;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::order_status::{ForbiddenTransition, OrderStatus, Transition};

/// Why an order was not stored, or may not have been; `S` is the storage
/// error (the store's database error), which the domain only shows.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlaceError<S> {
    #[error("this Idempotency-Key was used with a different order")]
    KeyReused,
    #[error(transparent)]
    Storage(S),
    /// COMMIT failed: the order may or may not be stored.
    #[error("the database did not confirm the commit: {0}")]
    OutcomeUnknown(S),
    /// Not taken: the last commit met an outage not yet over.
    #[error("the database is down: the order was not taken")]
    DatabaseDown,
    /// Not taken: as many orders as may wait are waiting.
    #[error("too many orders are waiting for a commit: the order was not taken")]
    QueueFull,
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    /// Shown to whoever placed the order and in staff listings only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub status: OrderStatus,
    /// Why a rejected order was rejected: `out_of_stock` or `unknown_product`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "out_of_stock")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Created(OrderView),
    /// The same request came with this key before: its order, unchanged.
    Replayed(OrderView),
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

/// What the `OrderDesk` has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounters {
    pub accepted: u64,
    pub replayed: u64,
    pub storage_failures: u64,
    pub confirmed: u64,
    pub rejected: u64,
    /// Taken to wait for a commit.
    pub queued: u64,
    /// Refused at once: the database was known to be down, or too many
    /// orders waited.
    pub refused: u64,
    /// Given up by their callers before their commit, and so never stored.
    pub abandoned: u64,
}

impl OrderCounters {
    /// Each counter by its name, the value of its `event` label in `/metrics`.
    pub fn by_event(&self) -> Vec<([&'static str; 1], u64)> {
        vec![
            (["accepted"], self.accepted),
            (["replayed"], self.replayed),
            (["storage_failure"], self.storage_failures),
            (["confirmed"], self.confirmed),
            (["rejected"], self.rejected),
            (["queued"], self.queued),
            (["refused"], self.refused),
            (["abandoned"], self.abandoned),
        ]
    }
}

/// One of the counters of [`OrderCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderCounter {
    Accepted,
    Replayed,
    StorageFailures,
    Confirmed,
    Rejected,
    Queued,
    Refused,
    Abandoned,
}

impl OrderCounters {
    pub fn count(&mut self, counter: OrderCounter) {
        let count = match counter {
            OrderCounter::Accepted => &mut self.accepted,
            OrderCounter::Replayed => &mut self.replayed,
            OrderCounter::StorageFailures => &mut self.storage_failures,
            OrderCounter::Confirmed => &mut self.confirmed,
            OrderCounter::Rejected => &mut self.rejected,
            OrderCounter::Queued => &mut self.queued,
            OrderCounter::Refused => &mut self.refused,
            OrderCounter::Abandoned => &mut self.abandoned,
        };
        *count += 1;
    }
}

/// What the `OrderDesk` does once the store has answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub count: Option<OrderCounter>,
    pub log: Option<LogLine>,
    /// The outbox has a new event: publish it now rather than at the
    /// relay's next poll.
    pub wake_relay: bool,
    /// The order became final this long after it was accepted.
    pub accepted_to_final: Option<std::time::Duration>,
}

impl Effects {
    fn new(count: Option<OrderCounter>, log: LogLine) -> Self {
        Self {
            count,
            log: Some(log),
            wake_relay: false,
            accepted_to_final: None,
        }
    }
}

/// Applies stock outcomes in delivery order to the orders' statuses as they
/// stand (`current`, which is left as the outcomes leave it): only a pending
/// order moves, a repeated outcome changes nothing, a contradicting one is
/// refused; an order not in `current` is unknown.
pub fn apply_outcomes(
    current: &mut HashMap<Uuid, OrderStatus>,
    outcomes: &[(Uuid, Option<RejectionReason>)],
) -> Vec<OutcomeApplied> {
    outcomes
        .iter()
        .map(|(order_id, rejection)| {
            let Some(status) = current.get_mut(order_id) else {
                return OutcomeApplied::UnknownOrder;
            };
            match status.transition(OrderStatus::after_stock_outcome(*rejection)) {
                Ok(Transition::To(to)) => {
                    *status = to;
                    OutcomeApplied::Moved(to)
                }
                Ok(Transition::AlreadyThere) => OutcomeApplied::AlreadyThere,
                Err(forbidden) => OutcomeApplied::Forbidden(forbidden),
            }
        })
        .collect()
}

/// Whether an order may wait for the next commit, `waiting` orders waiting
/// already: not while the database is known to be down, where it would
/// only wait to fail, nor beyond `max_waiting`, where waiting has no bound.
/// Refused, it is answered at once and nothing is ordered.
pub fn admit<S>(
    waiting: usize,
    max_waiting: usize,
    database_down: bool,
) -> Result<(), PlaceError<S>> {
    if database_down {
        Err(PlaceError::DatabaseDown)
    } else if waiting >= max_waiting {
        Err(PlaceError::QueueFull)
    } else {
        Ok(())
    }
}

pub fn after_placing<S: std::fmt::Display>(placed: &Result<Placed, PlaceError<S>>) -> Effects {
    match placed {
        Ok(Placed::Created(order)) => Effects {
            wake_relay: true,
            ..Effects::new(
                Some(OrderCounter::Accepted),
                LogLine::info("order accepted")
                    .with("order_id", order.order_id.to_string())
                    .with("product_id", order.product_id.as_str())
                    .with("quantity", order.quantity),
            )
        },
        Ok(Placed::Replayed(order)) => Effects::new(
            Some(OrderCounter::Replayed),
            LogLine::info("order request replayed with its Idempotency-Key")
                .with("order_id", order.order_id.to_string()),
        ),
        // The client is told; nothing went wrong here.
        Err(PlaceError::KeyReused) => Effects::default(),
        // Answered at once and counted; the outage has its own log lines.
        Err(PlaceError::DatabaseDown | PlaceError::QueueFull) => Effects {
            count: Some(OrderCounter::Refused),
            ..Effects::default()
        },
        Err(PlaceError::Storage(e)) => Effects::new(
            Some(OrderCounter::StorageFailures),
            LogLine::warn("order not accepted: it could not be stored").with("err", e.to_string()),
        ),
        Err(PlaceError::OutcomeUnknown(e)) => Effects::new(
            Some(OrderCounter::StorageFailures),
            LogLine::warn("order outcome unknown: the commit was not confirmed")
                .with("err", e.to_string()),
        ),
    }
}

/// What follows applying `event`, at `now`.
pub fn after_outcome(event: &StockEvent, applied: OutcomeApplied, now: DateTime<Utc>) -> Effects {
    // Known when the product service said when the order was accepted.
    let accepted_to_final = event
        .outcome()
        .order_created_at
        .map(|accepted| (now - accepted).to_std().unwrap_or_default());
    match applied {
        OutcomeApplied::Moved(OrderStatus::Confirmed) => Effects {
            accepted_to_final,
            ..Effects::new(
                Some(OrderCounter::Confirmed),
                LogLine::info("order confirmed"),
            )
        },
        OutcomeApplied::Moved(status) => {
            let mut log = LogLine::info(format!("order {}", status.as_str()));
            if let Some(reason) = event.rejection() {
                log = log.with("reason", reason.as_str());
            }
            Effects {
                accepted_to_final,
                ..Effects::new(Some(OrderCounter::Rejected), log)
            }
        }
        OutcomeApplied::AlreadyThere => {
            Effects::new(None, LogLine::info("stock outcome already recorded"))
        }
        OutcomeApplied::UnknownOrder => Effects::new(
            None,
            LogLine::warn("stock outcome for an unknown order, ignored"),
        ),
        OutcomeApplied::Forbidden(forbidden) => Effects::new(
            None,
            LogLine::warn("stock outcome contradicts the order's status, ignored")
                .with("err", forbidden.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests;
