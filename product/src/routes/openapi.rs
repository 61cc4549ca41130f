//! The OpenAPI 3 description of this service, served at `/openapi.json`.

use actix_web::HttpResponse;
use serde_json::{Value, json};

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn product(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Product" } } } })
}

pub fn document() -> Value {
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let staff = json!([{ "staffToken": [] }]);
    json!({
        "openapi": "3.0.3",
        "info": { "title": "product service", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Stock and catalogue. Stock changes on OrderCreated events and staff restocks." },
        "paths": {
            "/products": {
                "get": {
                    "summary": "Every product with its stock, keyed by id (the original shape)",
                    "responses": {
                        "200": { "description": "The catalogue", "content": { "application/json": { "schema": {
                            "type": "object",
                            "additionalProperties": { "$ref": "#/components/schemas/StockView" },
                            "example": { "123": { "name": "Laptop", "stock": 10 } } } } } },
                        "503": error("The database is unavailable; Retry-After: 1")
                    }
                },
                "post": {
                    "summary": "Add a product (staff)",
                    "security": staff,
                    "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Product" } } } },
                    "responses": {
                        "201": product("Created; Location: /products/{id}"),
                        "400": error("Invalid body; `field` names the culprit"),
                        "401": error("Missing or wrong bearer token"),
                        "403": error("Staff endpoints are disabled (no ADMIN_TOKEN)"),
                        "409": error("A product with this id exists"),
                        "413": error("Body over 16 KiB"),
                        "415": error("Body is not JSON"),
                        "503": error("The database is unavailable; Retry-After: 1")
                    }
                }
            },
            "/products/{id}": {
                "get": {
                    "summary": "One product",
                    "parameters": [id],
                    "responses": { "200": product("The product"), "404": error("No such product"),
                        "503": error("The database is unavailable; Retry-After: 1") }
                }
            },
            "/products/{id}/restock": {
                "post": {
                    "summary": "Add stock (staff); goes through the StockKeeper like every stock change",
                    "security": staff,
                    "parameters": [id],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["quantity"], "additionalProperties": false,
                        "properties": { "quantity": { "type": "integer", "minimum": 1, "maximum": 1000000 } } } } } },
                    "responses": {
                        "200": product("The product with its new stock"),
                        "400": error("Invalid body"),
                        "401": error("Missing or wrong bearer token"),
                        "403": error("Staff endpoints are disabled (no ADMIN_TOKEN)"),
                        "404": error("No such product"),
                        "409": error("The stock would overflow"),
                        "413": error("Body over 16 KiB"),
                        "415": error("Body is not JSON"),
                        "503": error("The database is unavailable; Retry-After: 1")
                    }
                }
            },
            "/health": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Serving" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3" } } } }
        },
        "components": {
            "securitySchemes": { "staffToken": { "type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "string" }, "field": { "type": "string" } } },
                "StockView": { "type": "object", "required": ["name", "stock"], "properties": {
                    "name": { "type": "string" }, "stock": { "type": "integer", "minimum": 0 } } },
                "Product": { "type": "object", "required": ["id", "name", "stock", "price_cents"],
                    "additionalProperties": false, "properties": {
                    "id": { "type": "string", "minLength": 1, "maxLength": 64 },
                    "name": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "stock": { "type": "integer", "minimum": 0 },
                    "price_cents": { "type": "integer", "minimum": 0 } } }
            }
        }
    })
}
