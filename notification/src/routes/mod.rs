pub mod health;
pub mod openapi;

use actix_web::http::Method;
use actix_web::{Route, web};

/// Every route of the service, each named once: registered from here and
/// described by `/openapi.json` (a test holds the two together).
fn routes() -> Vec<(&'static str, &'static str, Route)> {
    vec![
        ("GET", "/health", web::route().to(health::health)),
        (
            "GET",
            "/openapi.json",
            web::route().to(openapi::openapi_json),
        ),
    ]
}

/// `(method, path)` of every route.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

pub fn configure(config: &mut web::ServiceConfig) {
    for (method, path, route) in routes() {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        config.route(path, route.method(method));
    }
}
