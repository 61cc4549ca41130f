//! Stock and catalogue decisions, free of actix and of the database.

pub mod catalogue;
pub mod stock;

use serde::Serialize;

/// A product as `GET /products` shows it (keyed by id): the original shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    pub name: String,
    pub stock: i32,
}
