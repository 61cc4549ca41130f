use contracts::events::{OrderCreated, decode};
use contracts::topology::ORDER_EXCHANGE;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{WAIT, spawn_app, spawn_app_with_broker};

#[actix_web::test]
async fn an_order_without_body_publishes_one_laptop() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();

    // Act
    let (status, body) = app.create_order(None, None).await;

    // Assert
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "Order created and message sent!");
    let delivery = tap.next(WAIT).await.unwrap();
    let event = decode::<OrderCreated>(&delivery.data).unwrap();
    assert_eq!(body["order_id"], json!(event.order_id));
    assert_eq!((event.product_id.as_str(), event.quantity), ("123", 1));
    let properties = &delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        properties.message_id().as_ref().unwrap().as_str(),
        event.event_id.to_string()
    );
}

#[actix_web::test]
async fn http10_posts_without_a_body_are_orders_as_curl_0_sends_them() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();
    let address = app.address.trim_start_matches("http://");
    let closing = "POST /create_order HTTP/1.0\r\nHost: shop\r\nAccept: */*\r\n\r\n";
    let kept = "POST /create_order HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

    // Act: `curl -0 -X POST` (no Content-Length), on a connection of its
    // own, then twice on one kept-alive connection.
    let mut answers = String::new();
    for requests in [closing.to_string(), format!("{kept}{closing}")] {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(requests.as_bytes()).await.unwrap();
        stream.read_to_string(&mut answers).await.unwrap();
    }

    // Assert
    assert_eq!(answers.matches("HTTP/1.").count(), 3, "{answers}");
    assert_eq!(
        answers.matches("HTTP/1.0 201 Created").count(),
        3,
        "{answers}"
    );
    assert_eq!(
        answers.matches("Order created and message sent!").count(),
        3
    );
    for _ in 0..3 {
        let delivery = tap.next(WAIT).await.unwrap();
        let event = decode::<OrderCreated>(&delivery.data).unwrap();
        assert_eq!((event.product_id.as_str(), event.quantity), ("123", 1));
    }
}

#[actix_web::test]
async fn a_json_body_orders_what_it_names() {
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();

    let (status, body) = app
        .create_order(
            Some(r#"{"product_id":"456","quantity":2}"#),
            Some("application/json"),
        )
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["product_id"].as_str(), body["quantity"].as_u64()),
        (Some("456"), Some(2))
    );
    let event = decode::<OrderCreated>(&tap.next(WAIT).await.unwrap().data).unwrap();
    assert_eq!((event.product_id.as_str(), event.quantity), ("456", 2));
}

#[actix_web::test]
async fn bad_input_gets_a_clear_error_and_the_service_keeps_working() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();
    let too_large = format!(r#"{{"product_id":"{}"}}"#, "x".repeat(20_000));
    let cases: Vec<(&str, Option<&str>, u16, Option<&str>)> = vec![
        ("{not json", Some("application/json"), 400, None),
        (
            r#"{"product_id":"456","colour":"red"}"#,
            None,
            400,
            Some("colour"),
        ),
        (r#"{"product_id":""}"#, None, 400, Some("product_id")),
        (r#"{"quantity":0}"#, None, 400, Some("quantity")),
        (r#"{"quantity":"two"}"#, None, 400, Some("quantity")),
        (r#"{"quantity":5000}"#, None, 400, Some("quantity")),
        (
            "product_id=456",
            Some("application/x-www-form-urlencoded"),
            415,
            None,
        ),
        (&too_large, None, 413, None),
    ];

    // Act + Assert: each bad request is refused with a JSON error.
    for (body, content_type, expected_status, expected_field) in cases {
        let (status, answer) = app.create_order(Some(body), content_type).await;
        assert_eq!(status, expected_status, "{body:.60} -> {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert_eq!(answer["field"].as_str(), expected_field, "{answer}");
    }

    // Nothing was published for them, and a good order still goes through.
    let (status, _) = app.create_order(None, None).await;
    assert_eq!(status, 201);
    let event = decode::<OrderCreated>(&tap.next(WAIT).await.unwrap().data).unwrap();
    assert_eq!(event.product_id, "123");
    assert_eq!(
        testkit::count(&app.db, "SELECT count(*) FROM outbox").await,
        1,
        "one event staged, for the good order only"
    );
}

#[actix_web::test]
async fn body_errors_say_what_to_send() {
    // Arrange: a form, and a body streamed without a length that outgrows the limit.
    let app = spawn_app().await;
    let chunk = actix_web::web::Bytes::from(vec![b' '; 20_000]);
    let stream = futures_util::stream::once(async { Ok::<_, std::io::Error>(chunk) });

    // Act
    let form = app
        .create_order(Some("oops"), Some("application/x-www-form-urlencoded"))
        .await;
    let mut streamed = awc::Client::default()
        .post(format!("{}/create_order", app.address))
        .send_stream(stream)
        .await
        .unwrap();

    // Assert
    assert_eq!(
        form,
        (
            415,
            json!({"error": "unsupported content type \"application/x-www-form-urlencoded\": send JSON with Content-Type: application/json"})
        )
    );
    assert_eq!(streamed.status().as_u16(), 413);
    assert_eq!(
        streamed.json::<serde_json::Value>().await.unwrap(),
        json!({"error": "body is larger than 16384 bytes"})
    );
}

#[actix_web::test]
async fn an_order_is_stored_before_it_is_published() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();

    // Act
    let (status, body) = app.create_order(None, None).await;

    // Assert: the order and its event are in PostgreSQL, the event marked
    // published once the broker confirmed it.
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().unwrap();
    tap.next(WAIT).await.unwrap();
    let stored = testkit::eventually(WAIT, "the outbox row to be marked published", || async {
        let stored = app.stored(order_id).await;
        stored.1.then_some(stored)
    })
    .await;
    assert_eq!(stored, ("pending".to_string(), true));
}

#[actix_web::test]
async fn an_order_placed_before_any_consumer_started_waits_in_every_subscriber_queue() {
    // Arrange: a fresh vhost where no consuming service ever ran.
    let app = spawn_app().await;

    // Act
    let (status, _) = app.create_order(None, None).await;

    // Assert: the order service declared the whole topology, so the event
    // reached the product's and the notification's queues alike.
    assert_eq!(status, 201);
    for queue in ["product.order_created", "notification.order_created"] {
        testkit::eventually(WAIT, &format!("the event in {queue}"), || async {
            (app.broker.ready_count(queue).await.ok()? == 1).then_some(())
        })
        .await;
    }
}

#[actix_web::test]
async fn orders_are_accepted_while_rabbitmq_is_unreachable() {
    // Arrange: the service's broker URL points at a port nobody listens on.
    let vhost = testkit::TestVhost::create().unwrap();
    let dead_broker = format!("amqp://guest:guest@127.0.0.1:{}/%2f", testkit::free_port());
    let app = spawn_app_with_broker(vhost, &dead_broker).await;

    // Act
    let (status, body) = app.create_order(None, None).await;

    // Assert
    assert_eq!(status, 201, "{body}");
    let stored = app.stored(body["order_id"].as_str().unwrap()).await;
    assert_eq!(stored, ("pending".to_string(), false));
}

#[actix_web::test]
async fn openapi_describes_exactly_the_routes_served() {
    let app = spawn_app().await;

    testkit::openapi::assert_describes(
        &app.address,
        &<order::routes::OrderApi as platform::http::Api>::route_table(),
    )
    .await;
}
