//! Stock and catalogue decisions, free of actix and of the database.

pub mod catalogue;
pub mod stock;

use serde::Serialize;
use utoipa::ToSchema;

/// A product as `GET /products` shows it (keyed by id): the original shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductView {
    pub name: String,
    #[schema(minimum = 0)]
    pub stock: i32,
}
