//! HTTP pieces every service shares: the route table and `/health`.

use actix_web::http::Method;
use actix_web::{Route, web};

/// A route: method, path, handler. Each service lists its routes once, in
/// such a table; it registers them with [`register`] and documents them in
/// its `/openapi.json`, and a test holds the two together ([`table`]).
pub type RouteSpec = (&'static str, &'static str, Route);

/// `(method, path)` of every route.
pub fn table(routes: Vec<RouteSpec>) -> Vec<(&'static str, &'static str)> {
    routes
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

pub fn register(config: &mut web::ServiceConfig, routes: Vec<RouteSpec>) {
    for (method, path, route) in routes {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        config.route(path, route.method(method));
    }
}

pub use crate::health::health;
