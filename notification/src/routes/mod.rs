pub mod openapi;

use platform::http::{Api, RouteSpec};
use utoipa::OpenApi;

/// The notification service's HTTP API: each route named once, registered from
/// here and documented in [`openapi::ApiDoc`] (a test holds the two
/// together).
pub struct NotificationApi;

impl Api for NotificationApi {
    fn routes() -> Vec<RouteSpec> {
        // Its work arrives over RabbitMQ: only the routes every API has.
        Vec::new()
    }

    fn document() -> utoipa::openapi::OpenApi {
        openapi::ApiDoc::openapi()
    }
}
