pub mod error;
pub mod openapi;
pub mod products;

use actix_web::web;
use platform::http::{Api, RouteSpec};
use utoipa::OpenApi;

/// The product service's HTTP API: each route named once, registered from
/// here and documented in [`openapi::ApiDoc`] (a test holds the two
/// together).
pub struct ProductApi;

impl Api for ProductApi {
    fn routes() -> Vec<RouteSpec> {
        vec![
            ("GET", "/products", web::route().to(products::list_products)),
            (
                "POST",
                "/products",
                web::route().to(products::create_product),
            ),
            (
                "GET",
                "/products/{id}",
                web::route().to(products::get_product),
            ),
            (
                "POST",
                "/products/{id}/restock",
                web::route().to(products::restock),
            ),
        ]
    }

    fn document() -> utoipa::openapi::OpenApi {
        openapi::ApiDoc::openapi()
    }
}
