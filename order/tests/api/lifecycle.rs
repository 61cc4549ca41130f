//! Order endpoints beyond creation: idempotency, reads, listing, and the
//! lifecycle driven by stock events.

use contracts::events::{OrderCreated, RejectionReason, StockEvent, decode};
use contracts::topology::{ORDER_EXCHANGE, STOCK_EXCHANGE};
use serde_json::{Value, json};
use testkit::eventually;

use crate::helpers::{ADMIN_TOKEN, STOCK_QUEUE, TestApp, WAIT, spawn_app, spawn_app_with};

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    get_with(app, path, None).await
}

/// A GET with the staff token, as the order listing needs.
async fn staff_get(app: &TestApp, path: &str) -> (u16, Value) {
    get_with(app, path, Some(ADMIN_TOKEN)).await
}

async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = awc::Client::default().get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.unwrap();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, Value, Option<String>) {
    let mut response = awc::Client::default()
        .post(format!("{}{path}", app.address))
        .insert_header(("content-type", "application/json"))
        .insert_header(("idempotency-key", key))
        .send_body(body.to_string())
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = response.json::<Value>().await.unwrap();
    (response.status().as_u16(), body, location)
}

/// The `OrderCreated` the order service published for `order_id`, as the
/// product service would see it.
pub fn created(order_id: &str, product_id: &str, quantity: u32) -> OrderCreated {
    OrderCreated {
        order_id: order_id.parse().unwrap(),
        ..OrderCreated::new(product_id.into(), quantity)
    }
}

pub async fn publish_outcome(app: &TestApp, event: &StockEvent) {
    let body = serde_json::to_vec(event).unwrap();
    app.broker
        .publish(
            STOCK_EXCHANGE,
            &body,
            Some(&event.outcome().event_id.to_string()),
        )
        .await
        .unwrap();
}

async fn wait_for_status(app: &TestApp, order_id: &str, status: &str) -> Value {
    eventually(
        WAIT,
        &format!("order {order_id} to be {status}"),
        || async {
            let (_, order) = get(app, &format!("/orders/{order_id}")).await;
            (order["status"] == status).then_some(order)
        },
    )
    .await
}

#[actix_web::test]
async fn a_new_order_is_pending_and_located() {
    let app = spawn_app().await;

    let (status, body, location) = post_with_key(
        &app,
        "/orders",
        "key-1",
        r#"{"product_id":"456","quantity":2,"customer_email":"ada@example.com"}"#,
    )
    .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(
        body["customer_email"], "ada@example.com",
        "echoed to the customer"
    );
    let order_id = body["order_id"].as_str().unwrap();
    assert_eq!(
        location.as_deref(),
        Some(format!("/orders/{order_id}").as_str())
    );
    let (status, order) = get(&app, &format!("/orders/{order_id}")).await;
    assert_eq!(status, 200);
    assert!(order["created_at"].is_string() && order["updated_at"].is_string());
    // Whoever holds the id does not learn the customer's email.
    assert_eq!(
        order,
        json!({
            "order_id": order_id,
            "product_id": "456",
            "quantity": 2,
            "status": "pending",
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
        })
    );
}

#[actix_web::test]
async fn the_order_listing_needs_the_staff_token() {
    // Arrange
    let app = spawn_app().await;
    let (_, placed, _) = post_with_key(
        &app,
        "/orders",
        "k",
        r#"{"product_id":"456","customer_email":"ada@example.com"}"#,
    )
    .await;

    for token in [None, Some("wrong-token-0123456789")] {
        // Act
        let mut request = awc::Client::default().get(format!("{}/orders", app.address));
        if let Some(token) = token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        let mut response = request.send().await.unwrap();

        // Assert
        assert_eq!(response.status().as_u16(), 401, "{token:?}");
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"error": "send the staff token as Authorization: Bearer <ADMIN_TOKEN>"})
        );
    }
    // Staff see the whole order, email included.
    let (status, page) = staff_get(&app, "/orders").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["orders"][0]["order_id"], placed["order_id"]);
    assert_eq!(page["orders"][0]["customer_email"], "ada@example.com");
}

#[actix_web::test]
async fn without_an_admin_token_the_order_listing_is_forbidden() {
    let app = spawn_app_with(|settings, _| settings.admin_token = None).await;

    let (status, body) = get_with(&app, "/orders", Some(ADMIN_TOKEN)).await;

    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"error": "staff endpoints are disabled: the order service has no ADMIN_TOKEN"})
    );
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_same_order_and_publishes_nothing_new() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();
    let body = r#"{"product_id":"456","quantity":2}"#;

    // Act
    let first = post_with_key(&app, "/create_order", "retry-me", body).await;
    let retry = post_with_key(&app, "/create_order", "retry-me", body).await;
    let other = post_with_key(
        &app,
        "/create_order",
        "retry-me",
        r#"{"product_id":"456","quantity":3}"#,
    )
    .await;

    // Assert
    assert_eq!(first.0, 201);
    assert_eq!(retry.0, 201);
    assert_eq!(retry.1["order_id"], first.1["order_id"]);
    assert_eq!(other.0, 409, "{}", other.1);
    assert!(
        other.1["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    let event = decode::<OrderCreated>(&tap.next(WAIT).await.unwrap().data).unwrap();
    assert_eq!(json!(event.order_id), first.1["order_id"]);
    assert_eq!(
        testkit::count(&app.db, "SELECT count(*) FROM outbox").await,
        1,
        "one event only"
    );
    let (_, page) = staff_get(&app, "/orders").await;
    assert_eq!(page["orders"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn stock_events_confirm_or_reject_orders_once() {
    // Arrange: two pending orders.
    let app = spawn_app().await;
    let (_, confirmed, _) = post_with_key(&app, "/orders", "a", r#"{"product_id":"123"}"#).await;
    let (_, rejected, _) = post_with_key(&app, "/orders", "b", r#"{"product_id":"999"}"#).await;
    let (confirmed_id, rejected_id) = (
        confirmed["order_id"].as_str().unwrap(),
        rejected["order_id"].as_str().unwrap(),
    );
    app.broker.wait_for_consumer(STOCK_QUEUE, WAIT).await;

    // Act: the product service's answers, the rejection delivered twice.
    let reserved = StockEvent::answering(&created(confirmed_id, "123", 1), None);
    let refused = StockEvent::answering(
        &created(rejected_id, "999", 1),
        Some(RejectionReason::UnknownProduct),
    );
    publish_outcome(&app, &reserved).await;
    publish_outcome(&app, &refused).await;
    publish_outcome(&app, &refused).await;

    // Assert
    let order = wait_for_status(&app, confirmed_id, "confirmed").await;
    assert!(order.get("reason").is_none(), "{order}");
    let order = wait_for_status(&app, rejected_id, "rejected").await;
    assert_eq!(order["reason"], "unknown_product");
    // A contradicting outcome for a final order changes nothing.
    let late = StockEvent::answering(&created(rejected_id, "999", 1), None);
    publish_outcome(&app, &late).await;
    testkit::eventually(WAIT, "the late outcome acknowledged", || async {
        let acked = app
            .consumer_stats
            .acked
            .load(std::sync::atomic::Ordering::SeqCst);
        (acked == 4).then_some(())
    })
    .await;
    assert_eq!(
        get(&app, &format!("/orders/{rejected_id}")).await.1["status"],
        "rejected"
    );
}

#[actix_web::test]
async fn orders_are_listed_by_status_page_by_page() {
    // Arrange: five orders, two of them confirmed.
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for key in ["1", "2", "3", "4", "5"] {
        let (_, body, _) = post_with_key(&app, "/orders", key, r#"{"product_id":"123"}"#).await;
        ids.push(body["order_id"].as_str().unwrap().to_string());
    }
    app.broker.wait_for_consumer(STOCK_QUEUE, WAIT).await;
    for id in &ids[..2] {
        publish_outcome(&app, &StockEvent::answering(&created(id, "123", 1), None)).await;
        wait_for_status(&app, id, "confirmed").await;
    }

    // Act: walk all pages of two.
    let mut seen = Vec::new();
    let mut path = "/orders?limit=2".to_string();
    loop {
        let (status, page) = staff_get(&app, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_string()),
        );
        match page["next_after"].as_str() {
            Some(after) => path = format!("/orders?limit=2&after={after}"),
            None => break,
        }
    }
    let (_, confirmed) = staff_get(&app, "/orders?status=confirmed").await;

    // Assert: every order once, oldest first; the filter keeps two.
    assert_eq!(seen, ids);
    let confirmed: Vec<_> = confirmed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].clone())
        .collect();
    assert_eq!(confirmed, [json!(ids[0]), json!(ids[1])]);
}

#[actix_web::test]
async fn bad_ids_and_queries_get_clear_errors() {
    let app = spawn_app().await;

    let cases = [
        ("/orders/not-a-uuid", 400, Some("id")),
        ("/orders/00000000-0000-0000-0000-000000000000", 404, None),
        ("/orders?status=shipped", 400, Some("status")),
        ("/orders?limit=0", 400, Some("limit")),
        ("/orders?limit=many", 400, Some("limit")),
        ("/orders?after=yesterday", 400, Some("after")),
        ("/orders?colour=red", 400, None),
    ];
    for (path, expected, field) in cases {
        let (status, body) = staff_get(&app, path).await;
        assert_eq!(status, expected, "{path} -> {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path} -> {body}"
        );
        assert_eq!(body["field"].as_str(), field, "{path} -> {body}");
    }
    let (status, body, _) = post_with_key(&app, "/orders", " ", "{}").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    // Still serving.
    assert_eq!(staff_get(&app, "/orders").await.0, 200);
}

#[actix_web::test]
async fn nul_bytes_and_over_long_values_are_refused_before_any_query() {
    // Arrange: the database cut off, so any query would answer 503.
    let proxy = testkit::TcpProxy::start(testkit::pg_address());
    let app = spawn_app_with(|settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    proxy.cut();
    let long = "0".repeat(10_000);
    let cases = [
        ("/orders/%00".to_string(), "id"),
        (format!("/orders/{long}"), "id"),
        ("/orders?status=pending%00".to_string(), "status"),
        (format!("/orders?status={long}"), "status"),
        ("/orders?limit=5%00".to_string(), "limit"),
        (format!("/orders?limit={long}"), "limit"),
        ("/orders?after=%00".to_string(), "after"),
        (format!("/orders?after={long}"), "after"),
    ];

    for (path, field) in cases {
        // Act
        let (status, body) = staff_get(&app, &path).await;

        // Assert
        assert_eq!(status, 400, "{path:.40} -> {body:.200}");
        assert_eq!(body["field"], field, "{path:.40} -> {body:.200}");
    }
    let (status, _) = staff_get(&app, "/orders").await;
    assert_eq!(status, 503, "a valid request does reach the (cut) database");
}
