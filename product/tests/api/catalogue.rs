//! The catalogue endpoints, the staff token, and the stock events.

use contracts::events::{OrderCreated, RejectionReason, StockEvent, decode};
use contracts::topology::STOCK_EXCHANGE;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, WAIT, spawn_app, spawn_app_with};

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let client = awc::Client::default();
    let url = format!("{}{path}", app.address);
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(token) = token {
        request = request.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut response = match body {
        Some(body) => {
            request
                .insert_header(("content-type", "application/json"))
                .send_body(body.to_string())
                .await
        }
        None => request.send().await,
    }
    .unwrap();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Method, path, body, expected status, expected `field`.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, u16, Option<&'a str>);

const CABLE: &str = r#"{"id":"789","name":"Cable","stock":5,"price_cents":999}"#;

#[actix_web::test]
async fn staff_create_and_restock_products_that_everyone_can_read() {
    let app = spawn_app().await;

    let (status, created) = call(&app, "POST", "/products", Some(ADMIN_TOKEN), Some(CABLE)).await;
    assert_eq!(status, 201, "{created}");
    let (status, restocked) = call(
        &app,
        "POST",
        "/products/789/restock",
        Some(ADMIN_TOKEN),
        Some(r#"{"quantity":7}"#),
    )
    .await;
    assert_eq!(status, 200, "{restocked}");
    let (status, product) = call(&app, "GET", "/products/789", None, None).await;

    assert_eq!(status, 200);
    assert_eq!(
        product,
        json!({"id": "789", "name": "Cable", "stock": 12, "price_cents": 999})
    );
    assert_eq!(
        app.get_products().await.1["789"],
        json!({"name": "Cable", "stock": 12})
    );
    assert_eq!(app.counters().await.restocks, 1);
}

#[actix_web::test]
async fn staff_endpoints_refuse_missing_or_wrong_tokens() {
    let app = spawn_app().await;

    for token in [None, Some("wrong-token-0123456789")] {
        let (status, body) = call(&app, "POST", "/products", token, Some(CABLE)).await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = call(
            &app,
            "POST",
            "/products/123/restock",
            token,
            Some(r#"{"quantity":1}"#),
        )
        .await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        call(&app, "GET", "/products/789", None, None).await.0,
        404,
        "nothing created"
    );
    assert_eq!(app.stock("123").await, 10, "nothing restocked");
}

#[actix_web::test]
async fn without_the_token_even_bad_bodies_get_401_not_400_413_or_415() {
    // Arrange
    let app = spawn_app().await;
    let huge = "x".repeat(20_000);
    let bodies = [
        ("application/json", "{oops"),
        ("application/json", huge.as_str()),
        ("application/x-www-form-urlencoded", "id=789"),
    ];

    for (content_type, body) in bodies {
        // Act
        let mut response = awc::Client::default()
            .post(format!("{}/products/123/restock", app.address))
            .insert_header(("content-type", content_type))
            .send_body(body.to_string())
            .await
            .unwrap();

        // Assert
        assert_eq!(response.status().as_u16(), 401, "{content_type} {body:.20}");
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"error": "send the staff token as Authorization: Bearer <ADMIN_TOKEN>"})
        );
    }
    assert_eq!(app.stock("123").await, 10, "nothing restocked");
}

#[actix_web::test]
async fn staff_endpoints_are_forbidden_without_an_admin_token() {
    let app = spawn_app_with(|settings, _| settings.admin_token = None).await;

    let (status, body) = call(&app, "POST", "/products", Some(ADMIN_TOKEN), Some(CABLE)).await;

    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"error": "staff endpoints are disabled: the product service has no ADMIN_TOKEN"})
    );
}

#[actix_web::test]
async fn bad_catalogue_requests_get_clear_errors_and_the_service_keeps_working() {
    let app = spawn_app().await;
    let token = Some(ADMIN_TOKEN);
    let cases: [Case; 9] = [
        (
            "POST",
            "/products",
            Some(r#"{"id":"","name":"Cable","stock":5,"price_cents":1}"#),
            400,
            Some("id"),
        ),
        (
            "POST",
            "/products",
            Some(r#"{"id":"789","name":"Cable","stock":-5,"price_cents":1}"#),
            400,
            Some("stock"),
        ),
        (
            "POST",
            "/products",
            Some(r#"{"id":"789","name":"Cable","stock":5,"price_cents":-1}"#),
            400,
            Some("price_cents"),
        ),
        (
            "POST",
            "/products",
            Some(r#"{"id":"789","name":"Cable"}"#),
            400,
            None,
        ),
        (
            "POST",
            "/products",
            Some(r#"{"id":"123","name":"Laptop","stock":1,"price_cents":1}"#),
            409,
            None,
        ),
        (
            "POST",
            "/products/123/restock",
            Some(r#"{"quantity":0}"#),
            400,
            Some("quantity"),
        ),
        ("POST", "/products/123/restock", Some("not json"), 400, None),
        (
            "POST",
            "/products/nope/restock",
            Some(r#"{"quantity":1}"#),
            404,
            None,
        ),
        ("GET", "/products/nope", None, 404, None),
    ];
    for (method, path, body, expected, field) in cases {
        let (status, answer) = call(&app, method, path, token, body).await;
        assert_eq!(status, expected, "{method} {path} {body:?} -> {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert_eq!(answer["field"].as_str(), field, "{answer}");
    }
    // A wrong content type and an oversized body.
    let (status, _) = {
        let mut response = awc::Client::default()
            .post(format!("{}/products/123/restock", app.address))
            .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
            .insert_header(("content-type", "text/plain"))
            .send_body(r#"{"quantity":1}"#)
            .await
            .unwrap();
        (response.status().as_u16(), response.body().await.unwrap())
    };
    assert_eq!(status, 415);
    let huge = format!(
        r#"{{"id":"789","name":"{}","stock":1,"price_cents":1}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(
        call(&app, "POST", "/products", token, Some(&huge)).await.0,
        413
    );

    assert_eq!(app.stock("123").await, 10);
    assert_eq!(app.get_products().await.0, 200);
}

#[actix_web::test]
async fn each_order_is_answered_with_one_stock_event() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(STOCK_EXCHANGE).await.unwrap();
    let fits = OrderCreated {
        customer_email: Some("ada@example.com".into()),
        ..OrderCreated::new("123".into(), 10)
    };
    let too_many = OrderCreated::new("123".into(), 1);
    let unknown = OrderCreated::new("nope".into(), 1);

    // Act
    for order in [&fits, &too_many, &unknown, &fits] {
        app.publish(order).await;
    }
    app.wait_settled(4).await;

    // Assert: three events staged, none for the redelivery, published in
    // the order of the orders.
    assert_eq!(
        testkit::count(&app.db, "SELECT count(*) FROM outbox").await,
        3
    );
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(decode::<StockEvent>(&tap.next(WAIT).await.unwrap().data).unwrap());
    }
    let outcomes: Vec<_> = events
        .iter()
        .map(|e| (e.outcome().order_id, e.rejection()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (fits.order_id, None),
            (too_many.order_id, Some(RejectionReason::OutOfStock)),
            (unknown.order_id, Some(RejectionReason::UnknownProduct)),
        ]
    );
    assert_eq!(
        events[0].outcome().customer_email.as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(app.stock("123").await, 0);
}

#[actix_web::test]
async fn with_the_database_down_stock_requests_get_a_plain_503() {
    // Arrange
    let proxy = testkit::TcpProxy::start(testkit::pg_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    proxy.cut();

    // Act
    let mut response = awc::Client::default()
        .get(format!("{}/products", app.address))
        .send()
        .await
        .unwrap();

    // Assert: what failed, in plain words; the cause stays in the log.
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "stock is unavailable right now (database unavailable), try again"})
    );
    proxy.restore();
    assert_eq!(app.get_products().await.0, 200, "served again");
}

#[actix_web::test]
async fn whole_numbers_written_as_floats_are_taken_as_the_document_allows_and_fractions_refused() {
    // Arrange
    let app = spawn_app().await;
    let cable = r#"{"id":"789","name":"Cable","stock":60.0,"price_cents":999.0}"#;

    // Act
    let (created, product) = call(&app, "POST", "/products", Some(ADMIN_TOKEN), Some(cable)).await;
    let (restocked, _) = call(
        &app,
        "POST",
        "/products/789/restock",
        Some(ADMIN_TOKEN),
        Some(r#"{"quantity":5.0}"#),
    )
    .await;
    let (fraction, error) = call(
        &app,
        "POST",
        "/products/789/restock",
        Some(ADMIN_TOKEN),
        Some(r#"{"quantity":1.5}"#),
    )
    .await;

    // Assert
    assert_eq!(created, 201, "{product}");
    assert_eq!(product["price_cents"], json!(999));
    assert_eq!(restocked, 200);
    assert_eq!(fraction, 400, "{error}");
    assert_eq!(app.stock("789").await, 65);
}

#[actix_web::test]
async fn ids_and_names_are_taken_exactly_when_the_document_allows_them() {
    // Arrange
    let app = spawn_app().await;
    let document = testkit::openapi::document(&app.address).await;
    let fields = &document["components"]["schemas"]["NewProduct"]["properties"];
    let texts = [
        "",
        " ",
        "\t",
        "\u{3000}",
        "a\u{1}b",
        "a\u{85}",
        "Cable",
        " Cable ",
        "caf\u{e9}",
        "\u{feff}",
    ];

    for (n, text) in texts.into_iter().enumerate() {
        for field in ["id", "name"] {
            let documented = testkit::openapi::allows_text(&fields[field], text);
            let mut product =
                json!({"id": format!("p{n}-{field}"), "name": "n", "stock": 1, "price_cents": 1});
            product[field] = json!(text);

            // Act
            let (status, answer) = call(
                &app,
                "POST",
                "/products",
                Some(ADMIN_TOKEN),
                Some(&product.to_string()),
            )
            .await;

            // Assert
            let expected = if documented { 201 } else { 400 };
            assert_eq!(status, expected, "{field} {text:?} -> {answer}");
        }
    }
}

#[actix_web::test]
async fn ids_no_product_can_have_are_refused_before_any_query() {
    // Arrange: the database cut off, so any query would answer 503.
    let proxy = testkit::TcpProxy::start(testkit::pg_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    proxy.cut();
    let too_long = "x".repeat(65);
    let restock = Some(r#"{"quantity":1}"#);
    let cases = [
        ("GET", "/products/%00".to_string(), None),
        ("GET", "/products/12%003".to_string(), None),
        ("GET", format!("/products/{too_long}"), None),
        ("POST", "/products/%00/restock".to_string(), restock),
        ("POST", format!("/products/{too_long}/restock"), restock),
    ];

    for (method, path, body) in cases {
        // Act
        let (status, answer) = call(&app, method, &path, Some(ADMIN_TOKEN), body).await;

        // Assert
        assert_eq!(status, 400, "{method} {path} -> {answer}");
        assert_eq!(
            answer,
            json!({"error": "id must be 1 to 64 printable characters", "field": "id"})
        );
    }
    let (status, _) = call(&app, "GET", "/products/123", None, None).await;
    assert_eq!(status, 503, "a valid id does reach the (cut) database");
}

#[actix_web::test]
async fn the_location_of_a_product_with_any_printable_id_leads_back_to_it() {
    // Arrange: an id with Latin-1, a character outside the BMP and a space.
    let app = spawn_app().await;
    let id = "caf\u{e9} \u{1f600}/\u{b9}";
    let body = json!({"id": id, "name": "Odd", "stock": 3, "price_cents": 1}).to_string();

    // Act
    let created = awc::Client::default()
        .post(format!("{}/products", app.address))
        .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    let location = created
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (status, product) = call(&app, "GET", &location, None, None).await;

    // Assert: an ASCII header that names the product.
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(location, "/products/caf%C3%A9%20%F0%9F%98%80%2F%C2%B9");
    assert_eq!(status, 200, "{product}");
    assert_eq!(product["id"], json!(id));
}
