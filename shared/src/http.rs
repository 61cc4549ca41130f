//! The HTTP edge every service shares: the route table, registered as one
//! resource per path with JSON 404 and 405 answers, JSON error bodies,
//! reading JSON request bodies, the staff token, and `/health`.

mod staff;

use std::future::ready;

use actix_web::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;

pub use staff::{Access, AccessError, StaffAccess, StaffOnly, check_access};

/// Largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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

/// Registers `routes` with one resource per path, so that a known path asked
/// with another method answers 405 with `Allow` rather than 404; a path no
/// route has answers 404. Both in JSON like every other error.
pub fn register(config: &mut web::ServiceConfig, routes: Vec<RouteSpec>) {
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
/// input is to blame. A 503 is a passing outage: `Retry-After` says so.
pub fn error_response(
    status: StatusCode,
    message: impl std::fmt::Display,
    field: Option<&str>,
) -> HttpResponse {
    let mut body = json!({ "error": message.to_string() });
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((RETRY_AFTER, "1"));
    }
    response.json(body)
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("unsupported content type {0:?}: send JSON with Content-Type: application/json")]
    NotJson(String),
    #[error("could not read the request body: {0}")]
    Unreadable(String),
    #[error("invalid JSON body: {0}")]
    Invalid(String),
}

impl ResponseError for BodyError {
    fn status_code(&self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Unreadable(_) | BodyError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self.status_code(), self, None)
    }
}

/// Reads a body of at most [`MAX_BODY_BYTES`] that says it is JSON
/// (`application/json` or `+json`; no content type is read as JSON). A blank
/// body needs no content type: it is for the caller to say what it means.
pub async fn read_json_body(
    request: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, BodyError> {
    // A declared length over the limit is refused without reading a byte.
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if !is_blank(&body) {
        require_json(request)?;
    }
    Ok(body.freeze())
}

/// Reads a JSON body (see [`read_json_body`]) into a `T`.
pub async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, BodyError> {
    let body = read_json_body(request, payload).await?;
    if is_blank(&body) {
        return Err(BodyError::Invalid("the body is empty".into()));
    }
    serde_json::from_slice(&body).map_err(|e| BodyError::Invalid(e.to_string()))
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn require_json(request: &HttpRequest) -> Result<(), BodyError> {
    let Some(value) = request.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or("<not text>");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(BodyError::NotJson(value.to_string()))
    }
}

pub use crate::health::health;

#[cfg(test)]
mod tests {
    use actix_web::{App, test as actix_test};
    use serde_json::Value;

    use super::*;

    fn routes() -> Vec<RouteSpec> {
        vec![
            ("GET", "/things", web::route().to(HttpResponse::Ok)),
            ("POST", "/things", web::route().to(HttpResponse::Created)),
            ("GET", "/health", web::route().to(health)),
        ]
    }

    async fn call(method: Method, path: &str) -> (u16, Option<String>, Value) {
        let app = actix_test::init_service(App::new().configure(|c| register(c, routes()))).await;
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
        (
            status,
            allow,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
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

    async fn post(path: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
        async fn raw(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let body = read_json_body(&request, payload).await?;
            Ok(HttpResponse::Ok().json(json!({ "bytes": body.len() })))
        }
        async fn parsed(
            request: HttpRequest,
            payload: web::Payload,
        ) -> Result<HttpResponse, BodyError> {
            let value: Value = read_json(&request, payload).await?;
            Ok(HttpResponse::Ok().json(value))
        }
        let app = actix_test::init_service(
            App::new()
                .route("/raw", web::post().to(raw))
                .route("/parsed", web::post().to(parsed)),
        )
        .await;
        let mut request = actix_test::TestRequest::post()
            .uri(path)
            .set_payload(body.to_string());
        if let Some(content_type) = content_type {
            request = request.insert_header((CONTENT_TYPE, content_type));
        }
        let response = actix_test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        (status, actix_test::read_body_json(response).await)
    }

    #[actix_web::test]
    async fn json_bodies_are_read_with_or_without_a_content_type() {
        for content_type in [
            None,
            Some("application/json; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            let answer = post("/parsed", content_type, r#"{"a":1}"#).await;

            assert_eq!(answer, (200, json!({ "a": 1 })), "{content_type:?}");
        }
    }

    #[actix_web::test]
    async fn a_blank_body_needs_no_content_type_but_is_no_json_value() {
        assert_eq!(
            post("/raw", Some("text/plain"), " ").await,
            (200, json!({ "bytes": 1 }))
        );
        assert_eq!(
            post("/parsed", None, "").await,
            (
                400,
                json!({ "error": "invalid JSON body: the body is empty" })
            )
        );
    }

    #[actix_web::test]
    async fn bad_bodies_get_413_415_or_400() {
        let cases = [
            (
                "x".repeat(MAX_BODY_BYTES + 1),
                None,
                413,
                "body is larger than 16384 bytes".to_string(),
            ),
            (
                "a=1".to_string(),
                Some("application/x-www-form-urlencoded"),
                415,
                "unsupported content type \"application/x-www-form-urlencoded\": send JSON with Content-Type: application/json".to_string(),
            ),
            (
                "{oops".to_string(),
                None,
                400,
                "invalid JSON body: key must be a string at line 1 column 2".to_string(),
            ),
        ];
        for (body, content_type, status, error) in cases {
            let answer = post("/parsed", content_type, &body).await;

            assert_eq!(answer, (status, json!({ "error": error })), "{body:.20}");
        }
    }

    #[test]
    fn only_a_503_says_when_to_retry() {
        let unavailable = error_response(StatusCode::SERVICE_UNAVAILABLE, "down", None);
        let invalid = error_response(StatusCode::BAD_REQUEST, "bad", Some("id"));

        assert_eq!(unavailable.headers().get(RETRY_AFTER).unwrap(), "1");
        assert_eq!(invalid.headers().get(RETRY_AFTER), None);
    }
}
