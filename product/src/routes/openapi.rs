//! The OpenAPI document of this service, derived from the handlers'
//! annotations and the types they read and answer.

use platform::http::StaffToken;
use utoipa::OpenApi;

use super::products;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "product service",
        description = "Stock and catalogue. Stock changes on OrderCreated events and staff restocks."
    ),
    paths(
        products::list_products,
        products::create_product,
        products::get_product,
        products::restock,
    ),
    modifiers(&StaffToken),
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::catalogue::{MAX_ID_CHARS, MAX_NAME_CHARS, MAX_RESTOCK};

    fn schema(name: &str) -> Value {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        document["components"]["schemas"][name].clone()
    }

    #[test]
    fn the_document_states_the_limits_the_code_enforces() {
        let product = &schema("NewProduct")["properties"];
        let restock = &schema("RestockRequest")["properties"];

        assert_eq!(product["id"]["maxLength"], json!(MAX_ID_CHARS));
        for text in ["id", "name"] {
            assert_eq!(
                product[text]["pattern"],
                json!(contracts::json::PRINTABLE_TEXT_PATTERN),
                "{text}"
            );
        }
        assert_eq!(product["name"]["maxLength"], json!(MAX_NAME_CHARS));
        assert_eq!(product["stock"]["maximum"], json!(i32::MAX));
        assert_eq!(product["price_cents"]["maximum"], json!(i64::MAX));
        assert_eq!(restock["quantity"]["maximum"], json!(MAX_RESTOCK));
    }

    #[test]
    fn path_ids_state_the_rule_the_handlers_check_first() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = &document["paths"];

        for (path, method) in [
            ("/products/{id}", "get"),
            ("/products/{id}/restock", "post"),
        ] {
            let id = &paths[path][method]["parameters"][0];
            assert_eq!(id["name"], "id", "{method} {path}");
            assert_eq!(id["schema"]["minLength"], json!(1), "{method} {path}");
            assert_eq!(
                id["schema"]["maxLength"],
                json!(MAX_ID_CHARS),
                "{method} {path}"
            );
            assert_eq!(
                id["schema"]["pattern"],
                json!(contracts::json::PRINTABLE_TEXT_PATTERN),
                "{method} {path}"
            );
            assert!(
                paths[path][method]["responses"]["400"].is_object(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_as_the_handlers_do() {
        assert_eq!(schema("NewProduct")["additionalProperties"], json!(false));
        assert_eq!(
            schema("RestockRequest")["additionalProperties"],
            json!(false)
        );
    }
}
