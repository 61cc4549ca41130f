//! Reservations: what one order does to stock, and what the `StockKeeper`
//! does once it is committed (count it, log it, wake the relay).

use std::collections::HashMap;

use contracts::events::{OrderCreated, RejectionReason};
use foundation::telemetry::LogLine;

/// What became of one order's stock reservation: the product service's
/// decision, announced by a `contracts::events::StockEvent` (whose body is the
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

/// One order as the reservation sees it.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    pub product_id: &'a str,
    pub quantity: u32,
    /// Seen for the first time (not a redelivery of an applied event).
    pub fresh: bool,
}

/// Decides each order in delivery order against the stock as it runs down.
/// `stock` holds the products that exist, and is left as the orders leave
/// it: what to write back.
pub fn reserve_in_order(stock: &mut HashMap<String, i32>, demands: &[Demand]) -> Vec<Reservation> {
    demands
        .iter()
        .map(|demand| {
            if !demand.fresh {
                return Reservation::AlreadyApplied;
            }
            let Some(available) = stock.get_mut(demand.product_id) else {
                return Reservation::UnknownProduct;
            };
            let quantity = stock_quantity(demand.quantity);
            if *available >= quantity {
                *available -= quantity;
                Reservation::Reserved {
                    new_stock: *available,
                }
            } else {
                Reservation::OutOfStock {
                    available: *available,
                }
            }
        })
        .collect()
}

impl Reservation {
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

/// How many reservations this process has decided, by outcome, and restocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockCounters {
    pub reserved: u64,
    pub out_of_stock: u64,
    pub unknown_product: u64,
    pub already_applied: u64,
    pub restocks: u64,
}

impl StockCounters {
    /// Each counter by its name, the value of its `outcome` label in `/metrics`.
    pub fn by_outcome(&self) -> Vec<([&'static str; 1], u64)> {
        vec![
            (["reserved"], self.reserved),
            (["out_of_stock"], self.out_of_stock),
            (["unknown_product"], self.unknown_product),
            (["already_applied"], self.already_applied),
            (["restock"], self.restocks),
        ]
    }
}

/// One of the reservation counters of [`StockCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockCounter {
    Reserved,
    OutOfStock,
    UnknownProduct,
    AlreadyApplied,
}

impl StockCounters {
    pub fn count(&mut self, counter: StockCounter) {
        let count = match counter {
            StockCounter::Reserved => &mut self.reserved,
            StockCounter::OutOfStock => &mut self.out_of_stock,
            StockCounter::UnknownProduct => &mut self.unknown_product,
            StockCounter::AlreadyApplied => &mut self.already_applied,
        };
        *count += 1;
    }
}

/// What the `StockKeeper` does once a reservation is decided and committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    pub count: StockCounter,
    pub log: LogLine,
    /// The outbox has a new stock event: publish it now rather than at the
    /// relay's next poll.
    pub wake_relay: bool,
}

/// The original system's line, written when an order arrives.
pub fn received(order: &OrderCreated) -> LogLine {
    LogLine::info(format!(
        "[x] PRODUCT: Received order for product: {}",
        order.product_id
    ))
    .with("quantity", order.quantity)
}

pub fn after_reservation(order: &OrderCreated, reservation: &Reservation) -> Effects {
    let product = &order.product_id;
    let (count, log) = match *reservation {
        Reservation::Reserved { new_stock } => (
            StockCounter::Reserved,
            LogLine::info(format!(
                "Stock for product {product} reduced. New stock: {new_stock}"
            )),
        ),
        Reservation::OutOfStock { available } => (
            StockCounter::OutOfStock,
            LogLine::warn(format!("Order rejected: product {product} is out of stock"))
                .with("requested", order.quantity)
                .with("available", available),
        ),
        Reservation::UnknownProduct => (
            StockCounter::UnknownProduct,
            LogLine::warn(format!("Order rejected: product {product} does not exist")),
        ),
        Reservation::AlreadyApplied => (
            StockCounter::AlreadyApplied,
            LogLine::info("Order already applied, ignoring the redelivery"),
        ),
    };
    Effects {
        count,
        log,
        // A redelivery staged nothing.
        wake_relay: *reservation != Reservation::AlreadyApplied,
    }
}

#[cfg(test)]
mod tests {
    use foundation::telemetry::FieldValue;

    use super::*;

    fn demand(product_id: &str, quantity: u32) -> Demand<'_> {
        Demand {
            product_id,
            quantity,
            fresh: true,
        }
    }

    #[test]
    fn orders_are_decided_in_delivery_order_as_the_stock_runs_down() {
        // Arrange: 10 Laptops, and orders for 4, 4, 4, 2, then an unknown product.
        let mut stock = HashMap::from([("123".to_string(), 10), ("456".to_string(), 0)]);
        let demands = [
            demand("123", 4),
            demand("123", 4),
            demand("123", 4),
            demand("123", 2),
            demand("456", 1),
            demand("nope", 1),
        ];

        // Act
        let reservations = reserve_in_order(&mut stock, &demands);

        // Assert: the third does not fit, the fourth still does.
        assert_eq!(
            reservations,
            [
                Reservation::Reserved { new_stock: 6 },
                Reservation::Reserved { new_stock: 2 },
                Reservation::OutOfStock { available: 2 },
                Reservation::Reserved { new_stock: 0 },
                Reservation::OutOfStock { available: 0 },
                Reservation::UnknownProduct,
            ]
        );
        assert_eq!(stock["123"], 0, "what to write back");
    }

    #[test]
    fn a_redelivery_changes_nothing_and_huge_orders_never_fit() {
        let mut stock = HashMap::from([("123".to_string(), 10)]);
        let demands = [
            Demand {
                fresh: false,
                ..demand("123", 1)
            },
            demand("123", u32::MAX),
        ];

        let reservations = reserve_in_order(&mut stock, &demands);

        assert_eq!(
            reservations,
            [
                Reservation::AlreadyApplied,
                Reservation::OutOfStock { available: 10 }
            ]
        );
        assert_eq!(stock["123"], 10);
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

    #[test]
    fn an_arriving_order_is_logged_as_the_original_did() {
        let line = received(&OrderCreated::new("123".into(), 1));
        assert_eq!(line.message, "[x] PRODUCT: Received order for product: 123");
        assert_eq!(line.fields, [("quantity", FieldValue::Number(1))]);
    }

    #[test]
    fn each_reservation_is_counted_logged_and_announced() {
        let order = OrderCreated::new("123".into(), 2);
        let cases = [
            (
                Reservation::Reserved { new_stock: 9 },
                StockCounter::Reserved,
                "Stock for product 123 reduced. New stock: 9",
                true,
            ),
            (
                Reservation::OutOfStock { available: 1 },
                StockCounter::OutOfStock,
                "Order rejected: product 123 is out of stock",
                true,
            ),
            (
                Reservation::UnknownProduct,
                StockCounter::UnknownProduct,
                "Order rejected: product 123 does not exist",
                true,
            ),
            (
                Reservation::AlreadyApplied,
                StockCounter::AlreadyApplied,
                "Order already applied, ignoring the redelivery",
                false,
            ),
        ];
        for (reservation, count, message, wake_relay) in cases {
            let effects = after_reservation(&order, &reservation);
            assert_eq!(effects.count, count, "{reservation:?}");
            assert_eq!(effects.log.message, message);
            assert_eq!(effects.wake_relay, wake_relay, "{reservation:?}");
        }
        let out_of_stock = after_reservation(&order, &Reservation::OutOfStock { available: 1 });
        assert_eq!(
            out_of_stock.log,
            LogLine::warn("Order rejected: product 123 is out of stock")
                .with("requested", 2u32)
                .with("available", 1)
        );
    }

    #[test]
    fn counters_count_what_they_are_named() {
        let mut counters = StockCounters::default();
        counters.count(StockCounter::Reserved);
        counters.count(StockCounter::Reserved);
        counters.count(StockCounter::AlreadyApplied);
        assert_eq!(
            counters,
            StockCounters {
                reserved: 2,
                already_applied: 1,
                ..StockCounters::default()
            }
        );
    }
}
