//! The documented side of the HTTP edge. Each service derives its OpenAPI
//! document from its handlers and types (`utoipa`), serves it at
//! `/openapi.json`, and Swagger UI at `/swagger-ui/` from assets vendored
//! into the build (nothing is downloaded).

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::{self, Bytes};
use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
    /// The input to blame (a body field, header or parameter), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The service's document, serialized once at startup.
pub struct ApiDocument(Bytes);

impl ApiDocument {
    pub fn new(document: &OpenApi) -> Self {
        Self(Bytes::from(
            serde_json::to_vec(document).expect("an OpenAPI document serializes"),
        ))
    }
}

/// This service's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")),
)]
pub async fn openapi_json(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document.0.clone())
}

/// Declares the `staffToken` scheme that staff operations name in their
/// `security`: `Authorization: Bearer <ADMIN_TOKEN>`.
pub struct StaffToken;

impl Modify for StaffToken {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "staffToken",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("ADMIN_TOKEN of the service"))
                        .build(),
                ),
            );
    }
}

/// Swagger UI at `/swagger-ui/`, reading the document from `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").config(Config::from(DOCUMENT_PATH))
}
