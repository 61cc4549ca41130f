//! The OpenAPI 3 description of this service, served at `/openapi.json`.

use actix_web::HttpResponse;
use serde_json::{Value, json};

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "notification service", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Emails customers about their orders; its work arrives over RabbitMQ, not HTTP." },
        "paths": {
            "/health": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Serving" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3" } } } }
        }
    })
}
