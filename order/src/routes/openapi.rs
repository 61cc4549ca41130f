//! The OpenAPI document of this service, derived from the handlers'
//! annotations and the types they read and answer.

use platform::http::StaffToken;
use utoipa::openapi::{RefOr, Required};
use utoipa::{Modify, OpenApi};

use super::orders;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "order service",
        description = "Accepts orders; each becomes confirmed or rejected once the product service has decided."
    ),
    paths(
        orders::create_order,
        orders::list_orders,
        orders::get_order,
    ),
    modifiers(&StaffToken, &PlacingAnOrder),
)]
pub struct ApiDoc;

/// Two facts about placing an order that the annotation cannot state:
/// - the body may be left out (the original's default order): utoipa says a
///   body is optional only of an `Option` type, which would also allow
///   `null`, which is refused;
/// - `POST /orders` is `POST /create_order` under its REST name.
struct PlacingAnOrder;

impl Modify for PlacingAnOrder {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        let Some(mut operation) = paths
            .get("/create_order")
            .and_then(|item| item.post.clone())
        else {
            return;
        };
        if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
            body.required = Some(Required::False);
        }
        if let Some(item) = paths.get_mut("/create_order") {
            item.post = Some(operation.clone());
        }
        operation.operation_id = Some("create_order_rest".into());
        if let Some(item) = paths.get_mut("/orders") {
            item.post = Some(operation);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::order_request::{
        DEFAULT_PRODUCT_ID, FIELDS, IDEMPOTENCY_KEY_PATTERN, MAX_EMAIL_CHARS,
        MAX_IDEMPOTENCY_KEY_CHARS, MAX_PRODUCT_ID_CHARS, MAX_QUANTITY,
    };
    use crate::routes::params::MAX_PAGE;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn the_document_states_the_limits_the_code_enforces() {
        let schemas = &document()["components"]["schemas"];

        assert_eq!(
            schemas["ProductId"]["maxLength"],
            json!(MAX_PRODUCT_ID_CHARS)
        );
        assert_eq!(
            schemas["ProductId"]["pattern"],
            json!(contracts::json::PRINTABLE_TEXT_PATTERN)
        );
        assert_eq!(schemas["Quantity"]["maximum"], json!(MAX_QUANTITY));
        assert_eq!(
            schemas["CustomerEmail"]["maxLength"],
            json!(MAX_EMAIL_CHARS)
        );
    }

    #[test]
    fn the_order_body_lists_the_fields_the_parser_reads_none_required() {
        let body = &document()["components"]["schemas"]["OrderRequest"];
        let mut fields: Vec<_> = body["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        let mut expected = FIELDS.map(String::from).to_vec();
        expected.sort();

        assert_eq!(fields, expected);
        assert!(body["required"].as_array().is_none_or(Vec::is_empty));
        assert_eq!(body["additionalProperties"], json!(false));
        assert_eq!(DEFAULT_PRODUCT_ID, "123", "the description says so");
    }

    #[test]
    fn placing_an_order_takes_an_optional_body_that_is_not_null() {
        let paths = &document()["paths"];

        for path in ["/create_order", "/orders"] {
            let body = &paths[path]["post"]["requestBody"];
            assert_eq!(body["required"], json!(false), "{path}");
            assert_eq!(
                body["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/OrderRequest",
                "{path}"
            );
            assert_eq!(
                paths[path]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/CreatedOrder",
                "{path}"
            );
        }
    }

    #[test]
    fn the_parameters_state_the_limits_the_handlers_enforce() {
        let paths = &document()["paths"];
        let param = |path: &str, method: &str, name: &str| {
            paths[path][method]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{method} {path} has parameter {name}"))
        };

        for path in ["/create_order", "/orders"] {
            let key = param(path, "post", "Idempotency-Key");
            assert_eq!(key["in"], "header");
            assert_eq!(key["schema"]["minLength"], json!(1));
            assert_eq!(key["schema"]["maxLength"], json!(MAX_IDEMPOTENCY_KEY_CHARS));
            assert_eq!(key["schema"]["pattern"], json!(IDEMPOTENCY_KEY_PATTERN));
        }
        assert_eq!(
            param("/orders", "get", "limit")["schema"]["maximum"],
            json!(MAX_PAGE)
        );
    }
}
