//! The OpenAPI document of this service, derived from the handlers'
//! annotations and the types they read and answer.

use shared::http::StaffToken;
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
        orders::create_order_rest,
        orders::list_orders,
        orders::get_order,
        shared::health::health,
        shared::http::openapi::openapi_json,
    ),
    modifiers(&StaffToken, &OrderBodyMayBeLeftOut),
)]
pub struct ApiDoc;

/// Placing an order without a body orders the original's default. utoipa
/// says a body is optional only of an `Option` type, which would also allow
/// `null` (refused): the operations say so here instead.
struct OrderBodyMayBeLeftOut;

impl Modify for OrderBodyMayBeLeftOut {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in ["/create_order", "/orders"] {
            let body = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|operation| operation.request_body.as_mut());
            if let Some(RefOr::T(body)) = body {
                body.required = Some(Required::False);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::order_request::{
        DEFAULT_PRODUCT_ID, FIELDS, MAX_EMAIL_CHARS, MAX_IDEMPOTENCY_KEY_CHARS,
        MAX_PRODUCT_ID_CHARS, MAX_QUANTITY,
    };
    use crate::routes::orders::MAX_PAGE;

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
            assert_eq!(key["schema"]["maxLength"], json!(MAX_IDEMPOTENCY_KEY_CHARS));
        }
        assert_eq!(
            param("/orders", "get", "limit")["schema"]["maximum"],
            json!(MAX_PAGE)
        );
    }
}
