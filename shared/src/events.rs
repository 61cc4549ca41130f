//! Events that cross service boundaries. They are past tense: something that
//! already happened and that other services may react to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Content type of every event body on the wire.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Published once per accepted order to the fanout exchange `order_exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Unknown fields are ignored on purpose: producers may add fields (trace ids,
// customer email) without breaking consumers that do not know them yet.
pub struct OrderCreated {
    /// Unique per event; also the AMQP `message_id`, used by consumers to
    /// recognise a redelivery.
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    pub created_at: DateTime<Utc>,
}

impl OrderCreated {
    pub fn new(product_id: String, quantity: u32) -> Self {
        Self {
            event_id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            product_id,
            quantity,
            created_at: Utc::now(),
        }
    }
}

/// Why a message body is not a valid `OrderCreated`. Such a message can never
/// succeed, so it is dead-lettered rather than retried.
#[derive(Debug, thiserror::Error)]
pub enum InvalidEvent {
    #[error("body is not a valid OrderCreated event: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("product_id must not be empty")]
    EmptyProductId,
    #[error("quantity must be at least 1")]
    ZeroQuantity,
}

/// Decodes and checks an `OrderCreated` body.
pub fn decode_order_created(body: &[u8]) -> Result<OrderCreated, InvalidEvent> {
    let event: OrderCreated = serde_json::from_slice(body)?;
    if event.product_id.trim().is_empty() {
        return Err(InvalidEvent::EmptyProductId);
    }
    if event.quantity == 0 {
        return Err(InvalidEvent::ZeroQuantity);
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let event = OrderCreated::new("123".into(), 2);
        let body = serde_json::to_vec(&event).unwrap();
        assert_eq!(decode_order_created(&body).unwrap(), event);
    }

    #[test]
    fn rejects_garbage_and_invalid_fields() {
        assert!(matches!(
            decode_order_created(b"not json"),
            Err(InvalidEvent::Malformed(_))
        ));
        let mut event = serde_json::to_value(OrderCreated::new("123".into(), 1)).unwrap();
        event["quantity"] = 0.into();
        assert!(matches!(
            decode_order_created(event.to_string().as_bytes()),
            Err(InvalidEvent::ZeroQuantity)
        ));
        event["quantity"] = 1.into();
        event["product_id"] = " ".into();
        assert!(matches!(
            decode_order_created(event.to_string().as_bytes()),
            Err(InvalidEvent::EmptyProductId)
        ));
        event.as_object_mut().unwrap().remove("product_id");
        assert!(matches!(
            decode_order_created(event.to_string().as_bytes()),
            Err(InvalidEvent::Malformed(_))
        ));
    }
}
