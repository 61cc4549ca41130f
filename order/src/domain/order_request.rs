//! What a customer may order, decided without actix or the broker.

use serde_json::Value;

/// What `POST /create_order` with no body orders, as in the original system.
pub const DEFAULT_PRODUCT_ID: &str = "123";
pub const MAX_PRODUCT_ID_CHARS: usize = 64;
pub const MAX_QUANTITY: u32 = 1000;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A valid order: a product, how many of it, and whom to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub product_id: String,
    pub quantity: u32,
    pub customer_email: Option<String>,
}

impl Default for OrderRequest {
    fn default() -> Self {
        Self {
            product_id: DEFAULT_PRODUCT_ID.to_string(),
            quantity: 1,
            customer_email: None,
        }
    }
}

/// Why a body is not an order; `field` names the offending field, if one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidOrder {
    pub message: String,
    pub field: Option<String>,
}

impl InvalidOrder {
    fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

/// The fields an order body may have.
pub const FIELDS: [&str; 3] = ["product_id", "quantity", "customer_email"];

impl OrderRequest {
    /// Reads an order from a request body. An empty body is the original's
    /// default order; fields left out take the same defaults.
    pub fn parse(body: &[u8]) -> Result<Self, InvalidOrder> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let not_an_object = |detail: String| InvalidOrder {
            message: format!(
                "body must be a JSON object like {{\"product_id\": \"456\", \"quantity\": 2}}: {detail}"
            ),
            field: None,
        };
        // Read field by field, so every error can name its field.
        let value: Value =
            serde_json::from_slice(body).map_err(|e| not_an_object(e.to_string()))?;
        let Value::Object(mut fields) = value else {
            return Err(not_an_object(format!("got {value}")));
        };
        if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            let field = unknown.clone();
            return Err(InvalidOrder {
                message: format!(
                    "unknown field `{field}`; an order has {}",
                    FIELDS.join(", ")
                ),
                field: Some(field),
            });
        }
        let defaults = Self::default();
        let product_id = match fields.remove("product_id") {
            None => defaults.product_id,
            Some(Value::String(id)) => validate_product_id(id)?,
            Some(_) => {
                return Err(InvalidOrder::field(
                    "product_id",
                    "product_id must be a string",
                ));
            }
        };
        let quantity = match fields.remove("quantity") {
            None => defaults.quantity,
            Some(Value::Number(quantity)) => validate_quantity(&quantity)?,
            Some(other) => {
                return Err(InvalidOrder::field(
                    "quantity",
                    format!(
                        "quantity must be a whole number from 1 to {MAX_QUANTITY}, got {other}"
                    ),
                ));
            }
        };
        let customer_email = match fields.remove("customer_email") {
            None | Some(Value::Null) => None,
            Some(Value::String(email)) => Some(validate_email(email)?),
            Some(_) => {
                return Err(InvalidOrder::field(
                    "customer_email",
                    "customer_email must be a string",
                ));
            }
        };
        Ok(Self {
            product_id,
            quantity,
            customer_email,
        })
    }

    /// What makes two requests the same order, for `Idempotency-Key`.
    pub fn fingerprint(&self) -> String {
        serde_json::json!([self.product_id, self.quantity, self.customer_email]).to_string()
    }
}

/// Checks an `Idempotency-Key` header value.
pub fn validate_idempotency_key(key: &str) -> Result<String, InvalidOrder> {
    let field = "Idempotency-Key";
    if key.trim().is_empty() {
        return Err(InvalidOrder::field(
            field,
            "Idempotency-Key must not be empty",
        ));
    }
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(InvalidOrder::field(
            field,
            format!(
                "Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
            ),
        ));
    }
    Ok(key.to_string())
}

/// A plausible address: one `@`, something before it, a dotted domain after
/// it, no spaces. Whether it exists is for the mail server to say.
fn validate_email(email: String) -> Result<String, InvalidOrder> {
    let invalid = || {
        InvalidOrder::field(
            "customer_email",
            "customer_email must be an email address like ada@example.com",
        )
    };
    if email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

fn validate_product_id(id: String) -> Result<String, InvalidOrder> {
    if id.trim().is_empty() {
        return Err(InvalidOrder::field(
            "product_id",
            "product_id must not be empty",
        ));
    }
    if id.chars().count() > MAX_PRODUCT_ID_CHARS {
        return Err(InvalidOrder::field(
            "product_id",
            format!("product_id must be at most {MAX_PRODUCT_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(InvalidOrder::field(
            "product_id",
            "product_id must be printable text",
        ));
    }
    Ok(id)
}

fn validate_quantity(quantity: &serde_json::Number) -> Result<u32, InvalidOrder> {
    quantity
        .as_u64()
        .and_then(|q| u32::try_from(q).ok())
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| {
            InvalidOrder::field(
                "quantity",
                format!("quantity must be a whole number from 1 to {MAX_QUANTITY}, got {quantity}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_orders_one_laptop() {
        for body in [&b""[..], b"  \n"] {
            assert_eq!(OrderRequest::parse(body).unwrap(), OrderRequest::default());
        }
        assert_eq!(OrderRequest::default().product_id, "123");
    }

    #[test]
    fn json_body_orders_what_it_names() {
        let order = OrderRequest::parse(br#"{"product_id":"456","quantity":2}"#).unwrap();
        assert_eq!(
            order,
            OrderRequest {
                product_id: "456".into(),
                quantity: 2,
                customer_email: None,
            }
        );
        let order = OrderRequest::parse(br#"{"product_id":"456"}"#).unwrap();
        assert_eq!(order.quantity, 1);
        let order = OrderRequest::parse(br#"{"customer_email":"ada@example.com"}"#).unwrap();
        assert_eq!(order.customer_email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn invalid_bodies_name_the_field() {
        let cases: [(&[u8], Option<&str>); 11] = [
            (b"{not json", None),
            (b"[1]", None),
            (br#"{"product_id":"456","colour":"red"}"#, Some("colour")),
            (br#"{"product_id":456}"#, Some("product_id")),
            (br#"{"quantity":"two"}"#, Some("quantity")),
            (br#"{"product_id":""}"#, Some("product_id")),
            (br#"{"product_id":"a\u0007b"}"#, Some("product_id")),
            (br#"{"quantity":0}"#, Some("quantity")),
            (br#"{"quantity":1001}"#, Some("quantity")),
            (br#"{"quantity":1.5}"#, Some("quantity")),
            (br#"{"quantity":-3}"#, Some("quantity")),
        ];
        for (body, field) in cases {
            let error = OrderRequest::parse(body).unwrap_err();
            assert_eq!(
                error.field.as_deref(),
                field,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let emails = [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@example..com",
        ];
        for email in emails {
            let body = serde_json::json!({ "customer_email": email }).to_string();
            let error = OrderRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("customer_email"), "{email}");
        }
        let long = format!(
            r#"{{"product_id":"{}"}}"#,
            "x".repeat(MAX_PRODUCT_ID_CHARS + 1)
        );
        assert_eq!(
            OrderRequest::parse(long.as_bytes())
                .unwrap_err()
                .field
                .as_deref(),
            Some("product_id")
        );
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert_eq!(validate_idempotency_key("order-42").unwrap(), "order-42");
        for bad in ["", "  ", "a\u{7}b"] {
            assert!(validate_idempotency_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_idempotency_key(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)).is_err());
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let one = OrderRequest::default();
        let two = OrderRequest {
            quantity: 2,
            ..OrderRequest::default()
        };
        assert_eq!(one.fingerprint(), OrderRequest::default().fingerprint());
        assert_ne!(one.fingerprint(), two.fingerprint());
    }
}
