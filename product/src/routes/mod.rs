pub mod openapi;
pub mod products;

use actix_web::web;
use shared::http::{self, RouteSpec};
use utoipa::OpenApi;

/// Every route of the service, each named once: registered from here, and
/// each handler documented in [`openapi::ApiDoc`] (a test holds the two
/// together).
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
        ("GET", "/health", web::route().to(http::health)),
        ("GET", "/openapi.json", web::route().to(http::openapi_json)),
    ]
}

/// `(method, path)` of every route.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    http::table(routes())
}

pub fn configure(config: &mut web::ServiceConfig) {
    http::register(config, routes(), &openapi::ApiDoc::openapi());
}
