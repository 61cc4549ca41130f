//! What a customer may order, decided without actix or the broker. Each
//! value of an order has a type that only its validation constructs, so an
//! `OrderRequest` (and what the store is given) is valid by construction.

use std::fmt;

use serde_json::Value;
use utoipa::ToSchema;

/// What `POST /create_order` with no body orders, as in the original system.
pub const DEFAULT_PRODUCT_ID: &str = "123";
pub const MAX_PRODUCT_ID_CHARS: usize = 64;
pub const MAX_QUANTITY: u32 = 1000;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// What an `Idempotency-Key` header may hold, as its document states it:
/// printable ASCII (all a header can carry as text), not all blank.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";

// The `#[schema]` limits below are literals (utoipa takes no constants); a
// test of the document holds them to the constants above. The `serde`
// attributes only shape the schema: `parse` reads the body field by field.

/// A valid order: a product, how many of it, and whom to tell. As a body,
/// every field may be left out, and so may the body.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product_id": "456", "quantity": 2, "customer_email": "ada@example.com"}))]
pub struct OrderRequest {
    /// Left out: `123`, the original's Laptop.
    #[serde(default)]
    pub product_id: ProductId,
    /// Left out: 1.
    #[serde(default)]
    pub quantity: Quantity,
    /// Whom to email about the order.
    pub customer_email: Option<CustomerEmail>,
}

impl Default for OrderRequest {
    fn default() -> Self {
        Self {
            product_id: ProductId::try_from(DEFAULT_PRODUCT_ID).expect("a valid product id"),
            quantity: Quantity::ONE,
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
            Some(Value::String(id)) => ProductId::try_from(id.as_str())?,
            Some(_) => {
                return Err(InvalidOrder::field(
                    "product_id",
                    "product_id must be a string",
                ));
            }
        };
        let quantity = match fields.remove("quantity") {
            None => defaults.quantity,
            Some(quantity) => Quantity::from_json(&quantity)?,
        };
        let customer_email = match fields.remove("customer_email") {
            None | Some(Value::Null) => None,
            Some(Value::String(email)) => Some(CustomerEmail::try_from(email.as_str())?),
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

    /// What makes two requests the same order, for `Idempotency-Key`. Stored
    /// with each key: its form must not change.
    pub fn fingerprint(&self) -> String {
        serde_json::json!([
            self.product_id.as_str(),
            self.quantity.get(),
            self.customer_email.as_ref().map(CustomerEmail::as_str),
        ])
        .to_string()
    }
}

/// A product id: printable text of 1 to [`MAX_PRODUCT_ID_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(
    min_length = 1,
    max_length = 64,
    pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$"
)]
pub struct ProductId(String);

impl TryFrom<&str> for ProductId {
    type Error = InvalidOrder;

    fn try_from(id: &str) -> Result<Self, InvalidOrder> {
        let invalid = |message: String| InvalidOrder::field("product_id", message);
        if id.trim().is_empty() {
            return Err(invalid("product_id must not be empty".into()));
        }
        if id.chars().count() > MAX_PRODUCT_ID_CHARS {
            return Err(invalid(format!(
                "product_id must be at most {MAX_PRODUCT_ID_CHARS} characters"
            )));
        }
        if !contracts::json::is_printable_text(id) {
            return Err(invalid("product_id must be printable text".into()));
        }
        Ok(Self(id.to_string()))
    }
}

impl ProductId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many of the product: a whole number from 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(minimum = 1, maximum = 1000)]
pub struct Quantity(u32);

impl Quantity {
    pub const ONE: Self = Self(1);

    /// The `quantity` of a JSON body, which may be any JSON value; a whole
    /// number may be written as `2.0`, as JSON Schema's `integer` allows.
    pub fn from_json(quantity: &Value) -> Result<Self, InvalidOrder> {
        contracts::json::whole_number(quantity)
            .and_then(|q| u32::try_from(q).ok())
            .ok_or_else(|| invalid_quantity(quantity))
            .and_then(Self::try_from)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = InvalidOrder;

    fn try_from(quantity: u32) -> Result<Self, InvalidOrder> {
        if (1..=MAX_QUANTITY).contains(&quantity) {
            Ok(Self(quantity))
        } else {
            Err(invalid_quantity(quantity))
        }
    }
}

fn invalid_quantity(got: impl fmt::Display) -> InvalidOrder {
    InvalidOrder::field(
        "quantity",
        format!("quantity must be a whole number from 1 to {MAX_QUANTITY}, got {got}"),
    )
}

/// A plausible address: one `@`, something before it, a dotted domain after
/// it, no spaces. Whether it exists is for the mail server to say.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(format = Email, max_length = 254)]
pub struct CustomerEmail(String);

impl TryFrom<&str> for CustomerEmail {
    type Error = InvalidOrder;

    fn try_from(email: &str) -> Result<Self, InvalidOrder> {
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
        Ok(Self(email.to_string()))
    }
}

impl CustomerEmail {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An `Idempotency-Key` header value: 1 to [`MAX_IDEMPOTENCY_KEY_CHARS`]
/// printable characters, not all blank ([`IDEMPOTENCY_KEY_PATTERN`] once
/// the header has made it ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl TryFrom<&str> for IdempotencyKey {
    type Error = InvalidOrder;

    fn try_from(key: &str) -> Result<Self, InvalidOrder> {
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
        Ok(Self(key.to_string()))
    }
}

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
