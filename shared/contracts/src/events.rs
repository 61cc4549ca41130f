//! Events that cross service boundaries. They are past tense: something that
//! already happened and that other services may react to.
//!
//! Unknown fields are ignored on purpose: producers may add fields without
//! breaking consumers that do not know them yet.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Content type of every event body on the wire.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The most bytes an event body may have. Events are a few hundred bytes:
/// `stage` refuses a larger one, and consumers dead-letter a larger
/// delivery before decoding it (`AMQP_MAX_MESSAGE_BYTES`, this by default).
/// The RabbitMQ configurations under `deploy/` set `max_message_size` to it.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An event a consumer can decode and check.
pub trait Event: DeserializeOwned + Send + 'static {
    /// The name logs and errors use.
    const NAME: &'static str;
    fn event_id(&self) -> Uuid;
    fn order_id(&self) -> Uuid;
    /// The id of the HTTP request that placed the order, when known: it
    /// goes on every log line about the order, in every service.
    fn request_id(&self) -> Option<&str>;
    /// Checks what the type system cannot.
    fn validate(&self) -> Result<(), InvalidEvent> {
        Ok(())
    }
}

/// Why a message body is not a valid event. Such a message can never
/// succeed, so it is dead-lettered rather than retried.
#[derive(Debug, thiserror::Error)]
pub enum InvalidEvent {
    #[error("body is not a valid {event} event: {source}")]
    Malformed {
        event: &'static str,
        source: serde_json::Error,
    },
    #[error("product_id must not be empty")]
    EmptyProductId,
    #[error("quantity must be at least 1")]
    ZeroQuantity,
    #[error("request_id must be 1 to {MAX_REQUEST_ID_CHARS} printable ASCII characters")]
    BadRequestId,
}

/// The longest request id carried (and accepted from `x-request-id`).
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A request id worth carrying: printable ASCII, no spaces, not too long.
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Decodes and checks an event body.
pub fn decode<E: Event>(body: &[u8]) -> Result<E, InvalidEvent> {
    let event: E = serde_json::from_slice(body).map_err(|source| InvalidEvent::Malformed {
        event: E::NAME,
        source,
    })?;
    event.validate()?;
    Ok(event)
}

fn check_line(
    product_id: &str,
    quantity: u32,
    request_id: Option<&str>,
) -> Result<(), InvalidEvent> {
    if request_id.is_some_and(|id| !valid_request_id(id)) {
        return Err(InvalidEvent::BadRequestId);
    }
    if product_id.trim().is_empty() {
        return Err(InvalidEvent::EmptyProductId);
    }
    if quantity == 0 {
        return Err(InvalidEvent::ZeroQuantity);
    }
    Ok(())
}

/// Published once per accepted order to the fanout exchange `order_exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// Unique per event; also the AMQP `message_id`, used by consumers to
    /// recognise a redelivery.
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The placing request's id (`x-request-id`, `traceparent`, or made up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl OrderCreated {
    pub fn new(product_id: String, quantity: u32) -> Self {
        Self {
            event_id: Uuid::new_v4(),
            // Time-ordered ids let order listings page by id.
            order_id: Uuid::now_v7(),
            product_id,
            quantity,
            customer_email: None,
            created_at: Utc::now(),
            request_id: None,
        }
    }
}

impl Event for OrderCreated {
    const NAME: &'static str = "OrderCreated";

    fn event_id(&self) -> Uuid {
        self.event_id
    }

    fn order_id(&self) -> Uuid {
        self.order_id
    }

    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    fn validate(&self) -> Result<(), InvalidEvent> {
        check_line(&self.product_id, self.quantity, self.request_id())
    }
}

/// Why an order's stock could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    OutOfStock,
    UnknownProduct,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::OutOfStock => "out_of_stock",
            RejectionReason::UnknownProduct => "unknown_product",
        }
    }
}

/// What the product service decided for one `OrderCreated`, published to the
/// fanout exchange `stock_exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StockEvent {
    StockReserved(StockOutcome),
    StockRejected(StockOutcome),
}

/// The body shared by both stock events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockOutcome {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    /// Set on `StockRejected` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectionReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The request id of the order it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the order was accepted (its `OrderCreated.created_at`): the
    /// order service measures accept → final from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_created_at: Option<DateTime<Utc>>,
}

impl StockEvent {
    /// The event answering `order`: reserved, or rejected for `reason`.
    pub fn answering(order: &OrderCreated, rejection: Option<RejectionReason>) -> Self {
        let outcome = StockOutcome {
            event_id: Uuid::new_v4(),
            order_id: order.order_id,
            product_id: order.product_id.clone(),
            quantity: order.quantity,
            reason: rejection,
            customer_email: order.customer_email.clone(),
            occurred_at: Utc::now(),
            request_id: order.request_id.clone(),
            order_created_at: Some(order.created_at),
        };
        match rejection {
            None => StockEvent::StockReserved(outcome),
            Some(_) => StockEvent::StockRejected(outcome),
        }
    }

    pub fn outcome(&self) -> &StockOutcome {
        match self {
            StockEvent::StockReserved(outcome) | StockEvent::StockRejected(outcome) => outcome,
        }
    }

    /// `None` when reserved; the reason when rejected.
    pub fn rejection(&self) -> Option<RejectionReason> {
        match self {
            StockEvent::StockReserved(_) => None,
            StockEvent::StockRejected(outcome) => {
                Some(outcome.reason.unwrap_or(RejectionReason::OutOfStock))
            }
        }
    }
}

impl Event for StockEvent {
    const NAME: &'static str = "StockReserved/StockRejected";

    fn event_id(&self) -> Uuid {
        self.outcome().event_id
    }

    fn order_id(&self) -> Uuid {
        self.outcome().order_id
    }

    fn request_id(&self) -> Option<&str> {
        self.outcome().request_id.as_deref()
    }

    fn validate(&self) -> Result<(), InvalidEvent> {
        let outcome = self.outcome();
        check_line(&outcome.product_id, outcome.quantity, self.request_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_created_round_trips_through_json() {
        let event = OrderCreated::new("123".into(), 2);
        let body = serde_json::to_vec(&event).unwrap();
        assert_eq!(decode::<OrderCreated>(&body).unwrap(), event);
    }

    #[test]
    fn rejects_garbage_and_invalid_fields() {
        assert!(matches!(
            decode::<OrderCreated>(b"not json"),
            Err(InvalidEvent::Malformed { .. })
        ));
        let mut event = serde_json::to_value(OrderCreated::new("123".into(), 1)).unwrap();
        event["quantity"] = 0.into();
        assert!(matches!(
            decode::<OrderCreated>(event.to_string().as_bytes()),
            Err(InvalidEvent::ZeroQuantity)
        ));
        event["quantity"] = 1.into();
        event["product_id"] = " ".into();
        assert!(matches!(
            decode::<OrderCreated>(event.to_string().as_bytes()),
            Err(InvalidEvent::EmptyProductId)
        ));
        event.as_object_mut().unwrap().remove("product_id");
        assert!(matches!(
            decode::<OrderCreated>(event.to_string().as_bytes()),
            Err(InvalidEvent::Malformed { .. })
        ));
    }

    #[test]
    fn the_request_id_travels_from_the_order_to_its_stock_event_and_is_checked() {
        let order = OrderCreated {
            request_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ..OrderCreated::new("123".into(), 1)
        };
        let mut bad = serde_json::to_value(&order).unwrap();
        bad["request_id"] = "has spaces".into();

        let answer = StockEvent::answering(&order, None);

        assert_eq!(answer.request_id(), order.request_id());
        assert!(matches!(
            decode::<OrderCreated>(bad.to_string().as_bytes()),
            Err(InvalidEvent::BadRequestId)
        ));
        let without: OrderCreated = decode(
            serde_json::to_string(&OrderCreated::new("1".into(), 1))
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(without.request_id(), None);
    }

    #[test]
    fn stock_events_carry_their_type_and_reason() {
        let order = OrderCreated::new("123".into(), 1);
        let rejected = StockEvent::answering(&order, Some(RejectionReason::OutOfStock));
        let json = serde_json::to_value(&rejected).unwrap();
        assert_eq!(json["type"], "StockRejected");
        assert_eq!(json["reason"], "out_of_stock");
        assert_eq!(json["order_id"], serde_json::json!(order.order_id));
        let decoded = decode::<StockEvent>(json.to_string().as_bytes()).unwrap();
        assert_eq!(decoded.rejection(), Some(RejectionReason::OutOfStock));

        let reserved = StockEvent::answering(&order, None);
        assert_eq!(
            serde_json::to_value(&reserved).unwrap()["type"],
            "StockReserved"
        );
        assert_eq!(reserved.rejection(), None);
    }
}

/// Properties of the decoder over generated bodies, 256 cases each (the
/// default, stated so that the unit tests stay fast).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// Any JSON value a field could be sent as.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        /// An order event with fields that may or may not be valid.
        fn any_order()(
            product_id in "[ -~]{0,8}",
            quantity in prop_oneof![Just(0u32), Just(1), any::<u32>()],
            customer_email in proptest::option::of("[a-z]{1,5}@[a-z]{1,5}\\.com"),
            request_id in proptest::option::of("[ -~]{0,130}|[!-~]{1,128}"),
        ) -> OrderCreated {
            OrderCreated {
                customer_email,
                request_id,
                ..OrderCreated::new(product_id, quantity)
            }
        }
    }

    /// The rules of an order line, stated independently of `check_line`.
    fn is_valid(order: &OrderCreated) -> bool {
        !order.product_id.trim().is_empty()
            && order.quantity > 0
            && order.request_id.as_deref().is_none_or(|id| {
                !id.is_empty() && id.len() <= 128 && !id.contains(|c: char| !c.is_ascii_graphic())
            })
    }

    /// Decoding answers a value that validates and re-encodes to itself, or
    /// an error; it never panics.
    fn decodes_to_itself_or_refuses<E>(body: &[u8]) -> Result<(), TestCaseError>
    where
        E: Event + Serialize + PartialEq + std::fmt::Debug,
    {
        if let Ok(event) = decode::<E>(body) {
            prop_assert!(event.validate().is_ok());
            let again = decode::<E>(&serde_json::to_vec(&event).unwrap());
            prop_assert_eq!(again.ok(), Some(event));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_decode_to_a_valid_event_or_an_error(body in prop::collection::vec(any::<u8>(), 0..256)) {
            decodes_to_itself_or_refuses::<OrderCreated>(&body)?;
            decodes_to_itself_or_refuses::<StockEvent>(&body)?;
        }

        #[test]
        fn an_event_with_any_field_replaced_decodes_to_a_valid_event_or_an_error(
            order in any_order(),
            field in prop::sample::select(vec![
                "event_id", "order_id", "product_id", "quantity", "customer_email",
                "created_at", "request_id", "type", "reason", "unknown",
            ]),
            value in any_json(),
        ) {
            let mut body = serde_json::to_value(&order).unwrap();
            body[field] = value.clone();
            decodes_to_itself_or_refuses::<OrderCreated>(body.to_string().as_bytes())?;

            let mut stock = serde_json::to_value(StockEvent::answering(&order, None)).unwrap();
            stock[field] = value;
            decodes_to_itself_or_refuses::<StockEvent>(stock.to_string().as_bytes())?;
        }

        #[test]
        fn an_order_event_round_trips_exactly_when_it_is_valid(order in any_order()) {
            let body = serde_json::to_vec(&order).unwrap();

            let decoded = decode::<OrderCreated>(&body);

            match decoded {
                Ok(decoded) => {
                    prop_assert!(is_valid(&order), "accepted {:?}", order);
                    prop_assert_eq!(decoded, order);
                }
                Err(e) => {
                    prop_assert!(!is_valid(&order), "refused {:?}: {}", order, e);
                    prop_assert!(!matches!(e, InvalidEvent::Malformed { .. }), "{}", e);
                }
            }
        }

        #[test]
        fn a_stock_event_round_trips_exactly_when_its_order_is_valid(
            order in any_order(),
            rejection in proptest::option::of(prop_oneof![
                Just(RejectionReason::OutOfStock),
                Just(RejectionReason::UnknownProduct),
            ]),
        ) {
            let event = StockEvent::answering(&order, rejection);
            let body = serde_json::to_vec(&event).unwrap();

            let decoded = decode::<StockEvent>(&body);

            prop_assert_eq!(decoded.is_ok(), is_valid(&order));
            if let Ok(decoded) = decoded {
                prop_assert_eq!(decoded.rejection(), rejection);
                prop_assert_eq!(decoded, event);
            }
        }

        #[test]
        fn a_request_id_is_valid_exactly_when_it_is_1_to_128_printable_ascii(
            id in "[ -~\u{80}-\u{10ffff}]{0,140}|[!-~]{120,135}"
        ) {
            let printable = !id.is_empty() && id.chars().all(|c| c.is_ascii_graphic());

            prop_assert_eq!(valid_request_id(&id), printable && id.len() <= MAX_REQUEST_ID_CHARS);
        }
    }
}
