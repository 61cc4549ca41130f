//! What the served document allows, the service takes: a schema-driven
//! client (`.ci/api-fuzz`) sends exactly that.

use serde_json::{Value, json};
use testkit::openapi::{allows_text, document};

use crate::helpers::{TestApp, spawn_app};

async fn place(app: &TestApp, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = awc::Client::default()
        .post(format!("{}/orders", app.address))
        .insert_header(("content-type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("idempotency-key", key));
    }
    let mut response = request.send_body(body.to_string()).await.unwrap();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

#[actix_web::test]
async fn an_idempotency_key_is_taken_exactly_when_the_document_allows_it() {
    // Arrange: the header's schema as served.
    let app = spawn_app().await;
    let document = document(&app.address).await;
    let parameters = document["paths"]["/orders"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let schema = &parameters
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap()["schema"];
    let longest = "k".repeat(255);
    let too_long = "k".repeat(256);
    let keys = [
        "", " ", "   ", "\t", "a", "a b", "a\tb", "order-42", "~!", &longest, &too_long,
    ];

    for key in keys {
        let documented = allows_text(schema, key);

        // Act
        let (status, body) = place(&app, Some(key), "{}").await;

        // Assert
        let expected = if documented { 201 } else { 400 };
        assert_eq!(status, expected, "{key:?} -> {body}");
    }
}

#[actix_web::test]
async fn a_quantity_written_as_a_whole_float_is_that_many_and_a_fraction_is_refused() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (whole, order) = place(&app, None, r#"{"product_id":"456","quantity":2.0}"#).await;
    let (fraction, error) = place(&app, None, r#"{"product_id":"456","quantity":2.5}"#).await;

    // Assert
    assert_eq!(whole, 201, "{order}");
    assert_eq!(order["quantity"], json!(2));
    assert_eq!(fraction, 400, "{error}");
    assert_eq!(error["field"], "quantity");
}

#[actix_web::test]
async fn a_product_id_is_taken_exactly_when_the_document_allows_it() {
    // Arrange
    let app = spawn_app().await;
    let document = document(&app.address).await;
    let schema = &document["components"]["schemas"]["ProductId"];
    let longest = "p".repeat(64);
    let too_long = "p".repeat(65);
    let ids = [
        "",
        " ",
        "\t",
        "\u{3000}",
        "a\u{1}b",
        "a\u{85}",
        "456",
        " 456 ",
        "caf\u{e9}",
        "\u{feff}",
        &longest,
        &too_long,
    ];

    for id in ids {
        let documented = allows_text(schema, id);
        let body = json!({ "product_id": id }).to_string();

        // Act
        let (status, answer) = place(&app, None, &body).await;

        // Assert
        let expected = if documented { 201 } else { 400 };
        assert_eq!(status, expected, "{id:?} -> {answer}");
    }
}
