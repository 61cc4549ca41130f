//! An order as the service shows it, what storing one or applying a stock
//! outcome to it came to, and what the `OrderDesk` does after each (count
//! it, log it, wake the relay).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::events::{RejectionReason, StockEvent};
use shared::telemetry::LogLine;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::order_status::{ForbiddenTransition, OrderStatus, Transition};
use crate::error::PlaceError;

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
}

impl OrderCounters {
    /// Each counter by its name, for `/metrics`.
    pub fn by_event(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("accepted", self.accepted),
            ("replayed", self.replayed),
            ("storage_failure", self.storage_failures),
            ("confirmed", self.confirmed),
            ("rejected", self.rejected),
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
}

impl OrderCounters {
    pub fn count(&mut self, counter: OrderCounter) {
        let count = match counter {
            OrderCounter::Accepted => &mut self.accepted,
            OrderCounter::Replayed => &mut self.replayed,
            OrderCounter::StorageFailures => &mut self.storage_failures,
            OrderCounter::Confirmed => &mut self.confirmed,
            OrderCounter::Rejected => &mut self.rejected,
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

pub fn after_placing(placed: &Result<Placed, PlaceError>) -> Effects {
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
mod tests {
    use sea_orm::DbErr;
    use shared::events::{OrderCreated, RejectionReason};
    use shared::telemetry::LogLevel;

    use super::*;

    #[test]
    fn outcomes_move_pending_orders_once_and_refuse_contradictions() {
        // Arrange: two pending orders; one outcome comes twice, one contradicts.
        let (first, second, unknown) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut current = HashMap::from([
            (first, OrderStatus::Pending),
            (second, OrderStatus::Pending),
        ]);
        let out_of_stock = Some(RejectionReason::OutOfStock);

        // Act
        let applied = apply_outcomes(
            &mut current,
            &[
                (first, None),
                (first, None),
                (second, out_of_stock),
                (second, None),
                (unknown, None),
            ],
        );

        // Assert
        assert_eq!(applied[0], OutcomeApplied::Moved(OrderStatus::Confirmed));
        assert_eq!(applied[1], OutcomeApplied::AlreadyThere);
        assert_eq!(applied[2], OutcomeApplied::Moved(OrderStatus::Rejected));
        assert!(matches!(applied[3], OutcomeApplied::Forbidden(_)));
        assert_eq!(applied[4], OutcomeApplied::UnknownOrder);
        assert_eq!(current[&first], OrderStatus::Confirmed);
        assert_eq!(current[&second], OrderStatus::Rejected);
    }

    fn order() -> OrderView {
        let now = Utc::now();
        OrderView {
            order_id: Uuid::now_v7(),
            product_id: "456".into(),
            quantity: 2,
            customer_email: None,
            status: OrderStatus::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn only_a_new_order_wakes_the_relay() {
        let order = order();
        let created = after_placing(&Ok(Placed::Created(order.clone())));
        assert_eq!(created.count, Some(OrderCounter::Accepted));
        assert!(created.wake_relay);
        assert_eq!(
            created.log,
            Some(
                LogLine::info("order accepted")
                    .with("order_id", order.order_id.to_string())
                    .with("product_id", "456")
                    .with("quantity", 2u32)
            )
        );
        let replayed = after_placing(&Ok(Placed::Replayed(order)));
        assert_eq!(replayed.count, Some(OrderCounter::Replayed));
        assert!(!replayed.wake_relay);
    }

    #[test]
    fn failures_to_store_are_counted_and_warned_about() {
        for (failure, message) in [
            (
                PlaceError::Storage(DbErr::Custom("refused".into())),
                "order not accepted: it could not be stored",
            ),
            (
                PlaceError::OutcomeUnknown(DbErr::Custom("refused".into())),
                "order outcome unknown: the commit was not confirmed",
            ),
        ] {
            let effects = after_placing(&Err(failure));
            assert_eq!(effects.count, Some(OrderCounter::StorageFailures));
            let log = effects.log.expect("a log line");
            assert_eq!(
                (log.level, log.message.as_str()),
                (LogLevel::Warning, message)
            );
            assert!(!effects.wake_relay);
        }
        assert_eq!(
            after_placing(&Err(PlaceError::KeyReused)),
            Effects::default()
        );
    }

    #[test]
    fn each_applied_outcome_is_counted_and_logged() {
        let order = OrderCreated::new("123".into(), 1);
        let reserved = StockEvent::answering(&order, None);
        let rejected = StockEvent::answering(&order, Some(RejectionReason::OutOfStock));
        let forbidden = ForbiddenTransition {
            from: OrderStatus::Confirmed,
            to: OrderStatus::Rejected,
        };
        let cases = [
            (
                &reserved,
                OutcomeApplied::Moved(OrderStatus::Confirmed),
                Some(OrderCounter::Confirmed),
                LogLine::info("order confirmed"),
            ),
            (
                &rejected,
                OutcomeApplied::Moved(OrderStatus::Rejected),
                Some(OrderCounter::Rejected),
                LogLine::info("order rejected").with("reason", "out_of_stock"),
            ),
            (
                &reserved,
                OutcomeApplied::AlreadyThere,
                None,
                LogLine::info("stock outcome already recorded"),
            ),
            (
                &reserved,
                OutcomeApplied::UnknownOrder,
                None,
                LogLine::warn("stock outcome for an unknown order, ignored"),
            ),
            (
                &rejected,
                OutcomeApplied::Forbidden(forbidden),
                None,
                LogLine::warn("stock outcome contradicts the order's status, ignored")
                    .with("err", forbidden.to_string()),
            ),
        ];
        for (event, applied, count, log) in cases {
            let effects = after_outcome(event, applied, Utc::now());
            assert_eq!(effects.count, count, "{applied:?}");
            assert_eq!(effects.log, Some(log), "{applied:?}");
            assert!(!effects.wake_relay, "{applied:?}");
        }
    }

    #[test]
    fn a_final_order_reports_how_long_after_acceptance_it_became_final() {
        let order = OrderCreated::new("123".into(), 1);
        let reserved = StockEvent::answering(&order, None);
        let later = order.created_at + chrono::TimeDelta::milliseconds(250);
        let mut unstamped = reserved.clone();
        if let StockEvent::StockReserved(outcome) = &mut unstamped {
            outcome.order_created_at = None;
        }

        let moved = after_outcome(
            &reserved,
            OutcomeApplied::Moved(OrderStatus::Confirmed),
            later,
        );
        let again = after_outcome(&reserved, OutcomeApplied::AlreadyThere, later);
        let from_an_older_product = after_outcome(
            &unstamped,
            OutcomeApplied::Moved(OrderStatus::Confirmed),
            later,
        );

        assert_eq!(
            moved.accepted_to_final,
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(again.accepted_to_final, None, "counted once, when it moved");
        assert_eq!(from_an_older_product.accepted_to_final, None);
    }

    #[test]
    fn counters_count_what_they_are_named() {
        let mut counters = OrderCounters::default();
        counters.count(OrderCounter::Accepted);
        counters.count(OrderCounter::Rejected);
        counters.count(OrderCounter::Rejected);
        assert_eq!(
            counters,
            OrderCounters {
                accepted: 1,
                rejected: 2,
                ..OrderCounters::default()
            }
        );
    }
}
