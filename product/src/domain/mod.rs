//! Stock and catalogue decisions, free of actix and of the database.

pub mod catalogue;

use serde::Serialize;
use shared::events::RejectionReason;

/// What became of one order's stock reservation: the product service's
/// decision, announced by a `shared::events::StockEvent` (whose body is the
/// event-side `StockOutcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Reserved {
        new_stock: i32,
    },
    OutOfStock {
        available: i32,
    },
    UnknownProduct,
    /// The event was processed before (a redelivery): nothing changed.
    AlreadyApplied,
}

impl Reservation {
    /// Reads the outcome off the conditional decrement: the row it updated, if
    /// any, else the product as it stands.
    pub fn from_update(updated_stock: Option<i32>, current_stock: Option<i32>) -> Self {
        match (updated_stock, current_stock) {
            (Some(new_stock), _) => Self::Reserved { new_stock },
            (None, Some(available)) => Self::OutOfStock { available },
            (None, None) => Self::UnknownProduct,
        }
    }

    /// Why the order was rejected; `None` when reserved.
    pub fn rejection(&self) -> Option<RejectionReason> {
        match self {
            Self::OutOfStock { .. } => Some(RejectionReason::OutOfStock),
            Self::UnknownProduct => Some(RejectionReason::UnknownProduct),
            Self::Reserved { .. } | Self::AlreadyApplied => None,
        }
    }
}

/// The quantity as a stock amount. A quantity beyond any stock the column can
/// hold saturates, so it is simply out of stock.
pub fn stock_quantity(quantity: u32) -> i32 {
    i32::try_from(quantity).unwrap_or(i32::MAX)
}

/// A product as `GET /products` shows it (keyed by id): the original shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    pub name: String,
    pub stock: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_follows_the_conditional_update() {
        assert_eq!(
            Reservation::from_update(Some(9), Some(9)),
            Reservation::Reserved { new_stock: 9 }
        );
        assert_eq!(
            Reservation::from_update(None, Some(0)),
            Reservation::OutOfStock { available: 0 }
        );
        assert_eq!(
            Reservation::from_update(None, None),
            Reservation::UnknownProduct
        );
    }

    #[test]
    fn rejections_name_their_reason() {
        assert_eq!(Reservation::Reserved { new_stock: 1 }.rejection(), None);
        assert_eq!(
            Reservation::OutOfStock { available: 0 }.rejection(),
            Some(RejectionReason::OutOfStock)
        );
        assert_eq!(
            Reservation::UnknownProduct.rejection(),
            Some(RejectionReason::UnknownProduct)
        );
    }

    #[test]
    fn huge_quantities_saturate() {
        assert_eq!(stock_quantity(3), 3);
        assert_eq!(stock_quantity(u32::MAX), i32::MAX);
    }
}
