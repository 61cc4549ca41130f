//! The OpenAPI document of this service: its work arrives over RabbitMQ,
//! so it serves only the routes every service has (`Api::full_document`
//! adds them).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(info(
    title = "notification service",
    description = "Emails customers about their orders; its work arrives over RabbitMQ, not HTTP."
))]
pub struct ApiDoc;
