//! Which email each event calls for. Pure: no actix, no database.

pub mod mailing;

use contracts::events::{Event, OrderCreated, RejectionReason, StockEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The emails a customer gets: "order received" on `OrderCreated`, then
/// "order confirmed" or one of the "sorry" emails on the stock outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    OrderReceived,
    OrderConfirmed,
    OutOfStock,
    UnknownProduct,
}

impl EmailKind {
    pub const ALL: [EmailKind; 4] = [
        EmailKind::OrderReceived,
        EmailKind::OrderConfirmed,
        EmailKind::OutOfStock,
        EmailKind::UnknownProduct,
    ];

    /// As stored in `sent_emails.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::OrderReceived => "order_received",
            EmailKind::OrderConfirmed => "order_confirmed",
            EmailKind::OutOfStock => "out_of_stock",
            EmailKind::UnknownProduct => "unknown_product",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The subject line; "Sending email" is the original system's.
    pub fn subject(self) -> &'static str {
        match self {
            EmailKind::OrderReceived => "Sending email",
            EmailKind::OrderConfirmed => "Order confirmed",
            EmailKind::OutOfStock => "Sorry, out of stock",
            EmailKind::UnknownProduct => "Sorry, we do not sell this product",
        }
    }
}

/// One email about the event `event_id` of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub kind: EmailKind,
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    pub to: Option<String>,
    /// The placing request's id, for the log; not stored (an email sent by
    /// the sweep after a restart goes without it).
    pub request_id: Option<String>,
}

impl From<OrderCreated> for Email {
    fn from(event: OrderCreated) -> Self {
        Self {
            kind: EmailKind::OrderReceived,
            event_id: event.event_id,
            order_id: event.order_id,
            product_id: event.product_id,
            quantity: event.quantity,
            to: event.customer_email,
            request_id: event.request_id,
        }
    }
}

impl From<StockEvent> for Email {
    fn from(event: StockEvent) -> Self {
        let kind = match event.rejection() {
            None => EmailKind::OrderConfirmed,
            Some(RejectionReason::OutOfStock) => EmailKind::OutOfStock,
            Some(RejectionReason::UnknownProduct) => EmailKind::UnknownProduct,
        };
        let event_id = event.event_id();
        let outcome = match event {
            StockEvent::StockReserved(outcome) | StockEvent::StockRejected(outcome) => outcome,
        };
        Self {
            kind,
            event_id,
            order_id: outcome.order_id,
            product_id: outcome.product_id,
            quantity: outcome.quantity,
            to: outcome.customer_email,
            request_id: outcome.request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderCreated {
        OrderCreated {
            customer_email: Some("ada@example.com".into()),
            ..OrderCreated::new("456".into(), 2)
        }
    }

    #[test]
    fn an_accepted_order_gets_an_order_received_email() {
        let order = order();
        let email = Email::from(order.clone());
        assert_eq!(email.kind, EmailKind::OrderReceived);
        assert_eq!(email.event_id, order.event_id);
        assert_eq!(email.to.as_deref(), Some("ada@example.com"));
        assert_eq!((email.product_id.as_str(), email.quantity), ("456", 2));
    }

    #[test]
    fn each_stock_outcome_gets_its_own_email() {
        let order = order();
        let cases = [
            (None, EmailKind::OrderConfirmed),
            (Some(RejectionReason::OutOfStock), EmailKind::OutOfStock),
            (
                Some(RejectionReason::UnknownProduct),
                EmailKind::UnknownProduct,
            ),
        ];
        for (rejection, kind) in cases {
            let event = StockEvent::answering(&order, rejection);
            let email = Email::from(event.clone());
            assert_eq!(email.kind, kind, "{rejection:?}");
            assert_eq!(email.event_id, event.event_id());
            assert_eq!(email.order_id, order.order_id);
            assert_eq!(email.to.as_deref(), Some("ada@example.com"));
        }
    }

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EmailKind::parse("spam"), None);
    }
}
