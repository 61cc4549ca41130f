pub mod error;
pub mod openapi;
pub mod orders;
pub mod params;

use actix_web::web;
use platform::http::{Api, RouteSpec};
use utoipa::OpenApi;

/// The order service's HTTP API: each route named once, registered from
/// here and documented in [`openapi::ApiDoc`] (a test holds the two
/// together).
pub struct OrderApi;

impl Api for OrderApi {
    fn routes() -> Vec<RouteSpec> {
        vec![
            (
                "POST",
                "/create_order",
                web::route().to(orders::create_order),
            ),
            ("POST", "/orders", web::route().to(orders::create_order)),
            ("GET", "/orders", web::route().to(orders::list_orders)),
            ("GET", "/orders/{id}", web::route().to(orders::get_order)),
        ]
    }

    fn document() -> utoipa::openapi::OpenApi {
        openapi::ApiDoc::openapi()
    }
}
