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

fn create_operation(summary: &str) -> Value {
    json!({
        "summary": summary,
        "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "A retry with the same key and body returns the same order; another body gets 409",
            "schema": { "type": "string", "maxLength": 255 } }],
        "requestBody": { "required": false, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/OrderRequest" } } } },
        "responses": {
            "201": { "description": "Stored (status pending) and queued for publishing; Location: /orders/{id}",
                "headers": { "Location": { "schema": { "type": "string" } } },
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreatedOrder" } } } },
            "400": error("Invalid body or header; `field` names the culprit"),
            "409": error("Idempotency-Key reused with a different body"),
            "413": error("Body over 16 KiB"),
            "415": error("Body is not JSON"),
            "503": error("The database is unavailable (nothing was ordered), or did not confirm the order (retry with the same Idempotency-Key to find out); Retry-After: 1")
        }
    })
}

pub fn document() -> Value {
    let order = json!({ "description": "The order", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Order" } } } });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "order service", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Accepts orders; each becomes confirmed or rejected once the product service has decided." },
        "paths": {
            "/create_order": { "post": create_operation("Place an order (the original endpoint); no body orders one of product 123") },
            "/orders": {
                "post": create_operation("Place an order (REST alias of /create_order)"),
                "get": {
                    "summary": "Orders, oldest first, a page at a time (staff)",
                    "security": [{ "staffToken": [] }],
                    "parameters": [
                        { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["pending", "confirmed", "rejected"] } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 } },
                        { "name": "after", "in": "query", "description": "next_after of the previous page", "schema": { "type": "string", "format": "uuid" } }
                    ],
                    "responses": {
                        "200": { "description": "A page", "content": { "application/json": { "schema": {
                            "type": "object", "required": ["orders", "next_after"], "properties": {
                                "orders": { "type": "array", "items": { "$ref": "#/components/schemas/OrderRecord" } },
                                "next_after": { "type": "string", "format": "uuid", "nullable": true } } } } } },
                        "400": error("Invalid query parameter"),
                        "401": error("Missing or wrong bearer token"),
                        "403": error("Staff endpoints are disabled (no ADMIN_TOKEN)"),
                        "503": error("The database is unavailable; Retry-After: 1")
                    }
                }
            },
            "/orders/{id}": {
                "get": {
                    "summary": "One order, without the customer's email",
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                    "responses": { "200": order, "400": error("Not a UUID"), "404": error("No such order"),
                        "503": error("The database is unavailable; Retry-After: 1") }
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
                "OrderRequest": { "type": "object", "additionalProperties": false, "properties": {
                    "product_id": { "type": "string", "minLength": 1, "maxLength": 64, "default": "123" },
                    "quantity": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 1 },
                    "customer_email": { "type": "string", "format": "email" } } },
                "Order": { "type": "object",
                    "required": ["order_id", "product_id", "quantity", "status", "created_at", "updated_at"],
                    "properties": {
                        "order_id": { "type": "string", "format": "uuid" },
                        "product_id": { "type": "string" },
                        "quantity": { "type": "integer" },
                        "status": { "type": "string", "enum": ["pending", "confirmed", "rejected"] },
                        "reason": { "type": "string", "enum": ["out_of_stock", "unknown_product"] },
                        "created_at": { "type": "string", "format": "date-time" },
                        "updated_at": { "type": "string", "format": "date-time" } } },
                "OrderRecord": { "allOf": [
                    { "$ref": "#/components/schemas/Order" },
                    { "type": "object", "properties": { "customer_email": { "type": "string" } } } ] },
                "CreatedOrder": { "allOf": [
                    { "$ref": "#/components/schemas/OrderRecord" },
                    { "type": "object", "required": ["message"], "properties": {
                        "message": { "type": "string", "example": "Order created and message sent!" } } } ] }
            }
        }
    })
}
