//! The order lifecycle: `pending` until the product service has decided,
//! then `confirmed` or `rejected` for good.

use contracts::events::RejectionReason;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
}

/// A change of status the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from:?} to {to:?}")]
pub struct ForbiddenTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

/// What applying a stock outcome to an order amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status changes.
    To(OrderStatus),
    /// The order is already there: a redelivered outcome changes nothing.
    AlreadyThere,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    /// The status a stock outcome leads to.
    pub fn after_stock_outcome(rejection: Option<RejectionReason>) -> Self {
        match rejection {
            None => OrderStatus::Confirmed,
            Some(_) => OrderStatus::Rejected,
        }
    }

    /// Only a pending order moves, and only to a final status.
    pub fn transition(self, to: OrderStatus) -> Result<Transition, ForbiddenTransition> {
        match (self, to) {
            (from, to) if from == to && from != OrderStatus::Pending => {
                Ok(Transition::AlreadyThere)
            }
            (OrderStatus::Pending, OrderStatus::Confirmed | OrderStatus::Rejected) => {
                Ok(Transition::To(to))
            }
            (from, to) => Err(ForbiddenTransition { from, to }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn every_transition_allowed_or_forbidden() {
        let all = [Pending, Confirmed, Rejected];
        for from in all {
            for to in all {
                let expected = match (from, to) {
                    (Pending, Confirmed) => Ok(Transition::To(Confirmed)),
                    (Pending, Rejected) => Ok(Transition::To(Rejected)),
                    (Confirmed, Confirmed) | (Rejected, Rejected) => Ok(Transition::AlreadyThere),
                    (from, to) => Err(ForbiddenTransition { from, to }),
                };
                assert_eq!(from.transition(to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn stock_outcomes_lead_to_final_statuses() {
        assert_eq!(OrderStatus::after_stock_outcome(None), Confirmed);
        assert_eq!(
            OrderStatus::after_stock_outcome(Some(RejectionReason::UnknownProduct)),
            Rejected
        );
    }

    #[test]
    fn statuses_parse_from_their_names() {
        for status in [Pending, Confirmed, Rejected] {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }
}
