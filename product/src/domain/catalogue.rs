//! What staff may put in the catalogue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_RESTOCK: i64 = 1_000_000;

// The `#[schema]` limits below are literals (utoipa takes no constants); a
// test of the document holds them to the constants above. Whole numbers may
// be written as `2.0`, as JSON Schema's `integer` allows.

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
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub id: String,
    /// Printable text.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    #[serde(deserialize_with = "contracts::json::deserialize_whole_number")]
    pub stock: i64,
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    #[serde(deserialize_with = "contracts::json::deserialize_whole_number")]
    pub price_cents: i64,
}

/// Body of `POST /products/{id}/restock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1, maximum = 1000000)]
    #[serde(deserialize_with = "contracts::json::deserialize_whole_number")]
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

/// Whether `id` could name a product: the rule every product was created
/// under. A path id that breaks it is refused before any query (a NUL byte
/// would otherwise reach PostgreSQL, which refuses it like an outage).
pub fn check_id(id: &str) -> Result<(), InvalidProduct> {
    if contracts::json::is_printable_text(id) && id.chars().count() <= MAX_ID_CHARS {
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
        let printable = contracts::json::is_printable_text;
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

    /// Properties of the body decoders over generated bodies, 256 cases
    /// each (stated so that the unit tests stay fast).
    mod properties {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::*;

        fn any_json() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                (-5i64..5).prop_map(|n| json!(n as f64)),
                any::<f64>().prop_map(Value::from),
                ".{0,70}".prop_map(Value::from),
            ]
        }

        fn decode_product(body: &[u8]) -> Option<ProductDetails> {
            serde_json::from_slice::<NewProduct>(body)
                .ok()
                .and_then(|p| p.validate().ok())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_new_product_body_is_a_valid_product_that_reads_back_or_an_error(
                fields in prop::collection::btree_map(
                    prop_oneof![Just("id"), Just("name"), Just("stock"), Just("price_cents"), Just("colour")],
                    any_json(),
                    0..5,
                ),
            ) {
                let body = json!(fields).to_string();

                if let Some(product) = decode_product(body.as_bytes()) {
                    let again = decode_product(&serde_json::to_vec(&product).unwrap());
                    prop_assert_eq!(again, Some(product));
                }
            }

            #[test]
            fn whole_numbers_are_read_written_as_integers_or_floats(
                stock in 0..=i32::MAX,
                price_cents in 0i64..1 << 50,
                quantity in 1..=MAX_RESTOCK,
                as_float in any::<bool>(),
            ) {
                let number = |n: i64| if as_float { json!(n as f64) } else { json!(n) };
                let product = json!({"id": "1", "name": "n", "stock": number(stock.into()), "price_cents": number(price_cents)});
                let restock = json!({"quantity": number(quantity)});

                let product = decode_product(product.to_string().as_bytes()).unwrap();
                let restock: RestockRequest = serde_json::from_value(restock).unwrap();

                prop_assert_eq!((product.stock, product.price_cents), (stock, price_cents));
                prop_assert_eq!(restock.validate(), Ok(quantity as i32));
            }

            #[test]
            fn any_restock_body_is_a_bounded_quantity_or_an_error(value in any_json()) {
                let restock = serde_json::from_value::<RestockRequest>(json!({"quantity": value}));

                if let Ok(quantity) = restock.map_err(|e| e.to_string()).and_then(|r| r.validate().map_err(|e| e.to_string())) {
                    prop_assert!((1..=MAX_RESTOCK as i32).contains(&quantity));
                }
            }
        }
    }
}
