//! The HTTP edge every service shares: the route table, registered as one
//! resource per path with JSON 404 and 405 answers, JSON error bodies,
//! reading JSON request bodies, the staff token, `/health`, and the OpenAPI
//! document with Swagger UI.

use std::future::ready;

use actix_web::http::header::{ALLOW, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, Route, web};

mod body;
mod http10;
mod observe;
pub mod openapi;
mod request_deadline;
mod request_id;
mod staff;

pub use body::{BodyError, read_json, read_json_body};
pub use http10::Http10Lengths;
pub use observe::observe;
pub use openapi::{ApiDocument, DOCUMENT_PATH, ErrorBody, StaffToken, openapi_json, swagger_ui};
pub use request_deadline::RequestDeadline;
pub use request_id::{REQUEST_ID_HEADER, RequestId, RequestLog, TRACEPARENT_HEADER};
pub use staff::{Access, AccessError, StaffAccess, StaffOnly, check_access};

/// Largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A route: method, path, handler. Each service lists its routes once, in
/// such a table, and registers them with [`register`]; its `/openapi.json`
/// is derived from the handlers' annotations, and a test holds the two
/// together ([`table`]).
pub type RouteSpec = (&'static str, &'static str, Route);

/// A service's HTTP API: its own routes, and the OpenAPI document derived
/// from their handlers. `/openapi.json` comes with every API; `/health`,
/// `/ready` and `/metrics` are on the admin listener ([`admin_routes`]).
pub trait Api {
    /// The service's own routes, each named once.
    fn routes() -> Vec<RouteSpec>;

    /// The document describing the service's own routes.
    fn document() -> utoipa::openapi::OpenApi;

    /// The document served: the service's own, and the routes every API has.
    fn full_document() -> utoipa::openapi::OpenApi {
        Self::document().merge_from(<CommonRoutes as utoipa::OpenApi>::openapi())
    }

    /// Every route served: the service's own and `/openapi.json`.
    fn all_routes() -> Vec<RouteSpec> {
        let mut routes = Self::routes();
        routes.push(("GET", DOCUMENT_PATH, web::route().to(openapi_json)));
        routes
    }

    /// `(method, path)` of every route served, for the test that holds the
    /// document and the routes together.
    fn route_table() -> Vec<(&'static str, &'static str)> {
        table(Self::all_routes())
    }

    fn configure(config: &mut web::ServiceConfig) {
        register(config, Self::all_routes(), &Self::full_document());
    }
}

/// The routes [`Api::all_routes`] adds to every service, documented once.
#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi::openapi_json))]
struct CommonRoutes;

/// The admin listener's routes, the same in every service.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "admin listener",
        description = "Probes and metrics, served on ADMIN_ADDR apart from the public API"
    ),
    paths(
        foundation::health::health,
        foundation::readiness::ready,
        crate::metrics::metrics,
        openapi::openapi_json,
    )
)]
pub struct AdminRoutes;

/// Registers the admin listener's routes: `/health`, `/ready`, `/metrics`,
/// and their document at `/openapi.json`; JSON 404 and 405 as on the
/// public listener. Its app data: [`foundation::health::ServiceHealth`],
/// [`foundation::readiness::Readiness`] and [`messaging::consumer::ConsumerContext`].
pub fn admin_routes(config: &mut web::ServiceConfig) {
    config.app_data(web::Data::new(ApiDocument::new(
        &<AdminRoutes as utoipa::OpenApi>::openapi(),
    )));
    let routes: Vec<RouteSpec> = vec![
        ("GET", "/health", web::route().to(health)),
        (
            "GET",
            "/ready",
            web::route().to(foundation::readiness::ready),
        ),
        ("GET", "/metrics", web::route().to(crate::metrics::metrics)),
        ("GET", DOCUMENT_PATH, web::route().to(openapi_json)),
    ];
    register_routes(config, routes);
}

/// `(method, path)` of every route.
pub fn table(routes: Vec<RouteSpec>) -> Vec<(&'static str, &'static str)> {
    routes
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// Registers `routes` with one resource per path, so that a known path asked
/// with another method answers 405 with `Allow` rather than 404; a path no
/// route has answers 404. Both in JSON like every other error. `document`
/// is what [`openapi_json`] serves, and Swagger UI shows.
pub fn register(
    config: &mut web::ServiceConfig,
    routes: Vec<RouteSpec>,
    document: &utoipa::openapi::OpenApi,
) {
    config.app_data(web::Data::new(ApiDocument::new(document)));
    config.service(swagger_ui());
    register_routes(config, routes);
}

/// One resource per path, 405 for another method, 404 for another path.
fn register_routes(config: &mut web::ServiceConfig, routes: Vec<RouteSpec>) {
    let mut paths: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
    for (method, path, route) in routes {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        match paths.iter_mut().find(|(known, _)| *known == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => paths.push((path, vec![(method, route)])),
        }
    }
    for (path, routes) in paths {
        let allow = routes
            .iter()
            .map(|(method, _)| method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource =
            web::resource(path).default_service(web::to(move |request: HttpRequest| {
                ready(method_not_allowed(&request, &allow))
            }));
        for (method, route) in routes {
            resource = resource.route(route.method(method));
        }
        config.service(resource);
    }
    config.default_service(web::to(|request: HttpRequest| {
        ready(error_response(
            StatusCode::NOT_FOUND,
            no_route(request.method().as_str(), request.path()),
            None,
        ))
    }));
}

/// The error of a request no route matches; tests tell it from a handler's
/// own 404 by it.
pub fn no_route(method: &str, path: &str) -> String {
    format!("no route for {method} {path}")
}

fn method_not_allowed(request: &HttpRequest, allow: &str) -> HttpResponse {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; use {allow}",
            request.method(),
            request.path()
        ),
        None,
    );
    if let Ok(allow) = allow.parse() {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

/// The body of every error: `{"error": message}`, plus `"field"` when one
/// input is to blame. A 503 is a passing outage: `Retry-After` says so. A
/// 408 closes the connection: the rest of a slow request is not waited for.
pub fn error_response(
    status: StatusCode,
    message: impl std::fmt::Display,
    field: Option<&str>,
) -> HttpResponse {
    let body = ErrorBody {
        error: message.to_string(),
        field: field.map(str::to_string),
    };
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((RETRY_AFTER, "1"));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        response.force_close();
    }
    response.json(body)
}

pub use foundation::health::health;

#[cfg(test)]
mod tests {
    use actix_web::{App, test as actix_test};
    use serde_json::{Value, json};
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

    use super::*;

    fn document() -> utoipa::openapi::OpenApi {
        OpenApiBuilder::new()
            .info(InfoBuilder::new().title("things").version("1").build())
            .build()
    }

    fn routes() -> Vec<RouteSpec> {
        vec![
            ("GET", "/things", web::route().to(HttpResponse::Ok)),
            ("POST", "/things", web::route().to(HttpResponse::Created)),
            ("GET", "/health", web::route().to(health)),
            ("GET", DOCUMENT_PATH, web::route().to(openapi_json)),
        ]
    }

    async fn call(method: Method, path: &str) -> (u16, Option<String>, Value) {
        let (status, allow, body) = call_raw(method, path).await;
        (
            status,
            allow,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    async fn call_raw(method: Method, path: &str) -> (u16, Option<String>, Vec<u8>) {
        let app =
            actix_test::init_service(App::new().configure(|c| register(c, routes(), &document())))
                .await;
        let request = actix_test::TestRequest::default()
            .method(method)
            .uri(path)
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get(ALLOW)
            .map(|v| v.to_str().unwrap().to_string());
        let body = actix_test::read_body(response).await;
        (status, allow, body.to_vec())
    }

    #[actix_web::test]
    async fn every_method_of_a_path_is_routed() {
        assert_eq!(call(Method::GET, "/things").await.0, 200);
        assert_eq!(call(Method::POST, "/things").await.0, 201);
    }

    #[actix_web::test]
    async fn an_unknown_path_is_a_json_404() {
        let (status, _, body) = call(Method::GET, "/nope").await;

        assert_eq!(status, 404);
        assert_eq!(body, json!({ "error": "no route for GET /nope" }));
    }

    #[actix_web::test]
    async fn another_method_on_a_known_path_is_a_json_405_naming_the_allowed_ones() {
        let (status, allow, body) = call(Method::DELETE, "/things").await;

        assert_eq!(status, 405);
        assert_eq!(allow.as_deref(), Some("GET, POST"));
        assert_eq!(
            body,
            json!({ "error": "DELETE is not allowed on /things; use GET, POST" })
        );
    }

    #[actix_web::test]
    async fn the_document_is_served_as_given() {
        let (status, _, body) = call(Method::GET, DOCUMENT_PATH).await;

        assert_eq!(status, 200);
        assert_eq!(body, serde_json::to_value(document()).unwrap());
    }

    #[actix_web::test]
    async fn swagger_ui_is_served_from_the_vendored_assets_and_reads_the_document() {
        let (page, _, html) = call_raw(Method::GET, "/swagger-ui/").await;
        let (script, _, initializer) =
            call_raw(Method::GET, "/swagger-ui/swagger-initializer.js").await;

        assert_eq!(page, 200);
        assert!(String::from_utf8_lossy(&html).contains("swagger-ui"));
        assert_eq!(script, 200);
        assert!(
            String::from_utf8_lossy(&initializer).contains(DOCUMENT_PATH),
            "Swagger UI is pointed at {DOCUMENT_PATH}"
        );
    }

    #[test]
    fn only_a_503_says_when_to_retry() {
        let unavailable = error_response(StatusCode::SERVICE_UNAVAILABLE, "down", None);
        let invalid = error_response(StatusCode::BAD_REQUEST, "bad", Some("id"));

        assert_eq!(unavailable.headers().get(RETRY_AFTER).unwrap(), "1");
        assert_eq!(invalid.headers().get(RETRY_AFTER), None);
    }
}
