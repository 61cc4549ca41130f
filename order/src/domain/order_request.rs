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
#[schema(min_length = 1, max_length = 64)]
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
        if id.chars().any(char::is_control) {
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

    /// The `quantity` of a JSON body, which may be any JSON value.
    pub fn from_json(quantity: &Value) -> Result<Self, InvalidOrder> {
        quantity
            .as_u64()
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
/// printable characters, not all blank.
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
mod tests {
    use super::*;

    fn quantity(n: u32) -> Quantity {
        Quantity::try_from(n).unwrap()
    }

    #[test]
    fn empty_body_orders_one_laptop() {
        for body in [&b""[..], b"  \n"] {
            assert_eq!(OrderRequest::parse(body).unwrap(), OrderRequest::default());
        }
        assert_eq!(OrderRequest::default().product_id.as_str(), "123");
    }

    #[test]
    fn json_body_orders_what_it_names() {
        let order = OrderRequest::parse(br#"{"product_id":"456","quantity":2}"#).unwrap();
        assert_eq!(
            order,
            OrderRequest {
                product_id: ProductId::try_from("456").unwrap(),
                quantity: quantity(2),
                customer_email: None,
            }
        );
        let order = OrderRequest::parse(br#"{"product_id":"456"}"#).unwrap();
        assert_eq!(order.quantity.get(), 1);
        let order = OrderRequest::parse(br#"{"customer_email":"ada@example.com"}"#).unwrap();
        let email = order.customer_email.as_ref().map(CustomerEmail::as_str);
        assert_eq!(email, Some("ada@example.com"));
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
            let body = String::from_utf8_lossy(body);
            assert_eq!(error.field.as_deref(), field, "{body}");
        }
        let body = serde_json::json!({ "customer_email": "ada@" }).to_string();
        let error = OrderRequest::parse(body.as_bytes()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("customer_email"));
    }

    #[test]
    fn product_ids_are_printable_and_bounded() {
        let longest = "x".repeat(MAX_PRODUCT_ID_CHARS);
        for good in ["456", "a b", &longest] {
            assert_eq!(ProductId::try_from(good).unwrap().as_str(), good);
        }
        let too_long = "x".repeat(MAX_PRODUCT_ID_CHARS + 1);
        for bad in ["", "  ", "a\u{7}b", &too_long] {
            let error = ProductId::try_from(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("product_id"), "{bad:?}");
        }
    }

    #[test]
    fn quantities_are_whole_numbers_from_one_to_the_maximum() {
        for good in [1, 2, MAX_QUANTITY] {
            assert_eq!(quantity(good).get(), good);
        }
        assert_eq!(Quantity::from_json(&serde_json::json!(2)).unwrap().get(), 2);
        let error = Quantity::try_from(MAX_QUANTITY + 1).unwrap_err();
        assert_eq!(
            error.message,
            "quantity must be a whole number from 1 to 1000, got 1001"
        );
        for bad in ["0", "1001", "1.5", "-3", "\"two\"", "null", "4294967297"] {
            let error = Quantity::from_json(&serde_json::from_str(bad).unwrap()).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("quantity"), "{bad}");
            assert!(error.message.ends_with(&format!("got {bad}")), "{error}");
        }
    }

    #[test]
    fn customer_emails_are_plausible_addresses() {
        for good in ["ada@example.com", "a.b+c@mail.example.org"] {
            assert_eq!(CustomerEmail::try_from(good).unwrap().as_str(), good);
        }
        let too_long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
        let emails = [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@example..com",
            &too_long,
        ];
        for bad in emails {
            let error = CustomerEmail::try_from(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("customer_email"), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        let key = IdempotencyKey::try_from("order-42").unwrap();
        assert_eq!(key.as_str(), "order-42");
        let too_long = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1);
        for bad in ["", "  ", "a\u{7}b", &too_long] {
            let error = IdempotencyKey::try_from(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("Idempotency-Key"), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let one = OrderRequest::default();
        let two = OrderRequest {
            quantity: quantity(2),
            ..OrderRequest::default()
        };
        assert_eq!(one.fingerprint(), OrderRequest::default().fingerprint());
        assert_ne!(one.fingerprint(), two.fingerprint());
        // The form stored with the keys of earlier orders.
        assert_eq!(one.fingerprint(), r#"["123",1,null]"#);
    }
}
