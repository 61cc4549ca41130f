//! The OpenAPI document of this service: its work arrives over RabbitMQ,
//! so it serves only the routes every service has.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "notification service",
        description = "Emails customers about their orders; its work arrives over RabbitMQ, not HTTP."
    ),
    paths(
        shared::health::health,
        shared::readiness::ready,
        shared::metrics::metrics,
        shared::http::openapi::openapi_json
    )
)]
pub struct ApiDoc;
