//! What staff may put in the catalogue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_RESTOCK: i64 = 1_000_000;
/// [`check_id`] as a regular expression, for the OpenAPI document: no
/// control character, not only whitespace.
pub const ID_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

// The `#[schema]` limits below are literals (utoipa takes no constants); a
// test of the document holds them to the constants above.

/// A product in full, as `GET /products/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"id": "123", "name": "Laptop", "stock": 10, "price_cents": 99900}))]
pub struct ProductDetails {
    pub id: String,
    pub name: String,
    #[schema(minimum = 0)]
    pub stock: i32,
    #[schema(minimum = 0)]
    pub price_cents: i64,
}

/// Body of `POST /products`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Printable text.
    #[schema(min_length = 1, max_length = 64)]
    pub id: String,
    /// Printable text.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: i64,
    #[schema(minimum = 0)]
    pub price_cents: i64,
}

/// Body of `POST /products/{id}/restock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: i64,
}

/// A catalogue request that breaks a rule; `field` names the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidProduct {
    pub message: String,
    pub field: &'static str,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidProduct {
    InvalidProduct {
        message: message.into(),
        field,
    }
}

fn printable(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_control)
}

/// Whether `id` could name a product: the rule every product was created
/// under. A path id that breaks it is refused before any query (a NUL byte
/// would otherwise reach PostgreSQL, which refuses it like an outage).
pub fn check_id(id: &str) -> Result<(), InvalidProduct> {
    if printable(id) && id.chars().count() <= MAX_ID_CHARS {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("id must be 1 to {MAX_ID_CHARS} printable characters"),
        ))
    }
}

impl NewProduct {
    pub fn validate(self) -> Result<ProductDetails, InvalidProduct> {
        check_id(&self.id)?;
        if !printable(&self.name) || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(
                "name",
                format!("name must be 1 to {MAX_NAME_CHARS} printable characters"),
            ));
        }
        let stock = i32::try_from(self.stock)
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| {
                invalid(
                    "stock",
                    format!("stock must be a whole number from 0 to {}", i32::MAX),
                )
            })?;
        if self.price_cents < 0 {
            return Err(invalid("price_cents", "price_cents must not be negative"));
        }
        Ok(ProductDetails {
            id: self.id,
            name: self.name,
            stock,
            price_cents: self.price_cents,
        })
    }
}

impl RestockRequest {
    pub fn validate(&self) -> Result<i32, InvalidProduct> {
        if (1..=MAX_RESTOCK).contains(&self.quantity) {
            Ok(self.quantity as i32)
        } else {
            Err(invalid(
                "quantity",
                format!("quantity must be a whole number from 1 to {MAX_RESTOCK}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, name: &str, stock: i64, price_cents: i64) -> NewProduct {
        NewProduct {
            id: id.into(),
            name: name.into(),
            stock,
            price_cents,
        }
    }

    #[test]
    fn new_products_are_checked_field_by_field() {
        assert!(product("789", "Cable", 5, 999).validate().is_ok());
        let cases = [
            (product("", "Cable", 5, 1), "id"),
            (product(&"x".repeat(65), "Cable", 5, 1), "id"),
            (product("789", " ", 5, 1), "name"),
            (product("789", "Cable", -1, 1), "stock"),
            (product("789", "Cable", i64::from(i32::MAX) + 1, 1), "stock"),
            (product("789", "Cable", 5, -1), "price_cents"),
        ];
        for (new, field) in cases {
            assert_eq!(new.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn ids_that_no_product_can_have_are_refused() {
        let longest = ["x".repeat(MAX_ID_CHARS), "é".repeat(MAX_ID_CHARS)];
        let too_long = "x".repeat(MAX_ID_CHARS + 1);
        for id in ["123", " 12", &longest[0], &longest[1]] {
            assert_eq!(check_id(id), Ok(()), "{id:?}");
        }
        for id in ["", " ", "1\u{0}2", "tab\there", "\u{85}", &too_long] {
            assert_eq!(check_id(id).unwrap_err().field, "id", "{id:?}");
        }
    }

    #[test]
    fn restocks_are_bounded() {
        assert_eq!(RestockRequest { quantity: 5 }.validate(), Ok(5));
        for quantity in [0, -1, MAX_RESTOCK + 1] {
            assert!(
                RestockRequest { quantity }.validate().is_err(),
                "{quantity}"
            );
        }
    }
}
