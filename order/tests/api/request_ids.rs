use contracts::events::{Event, OrderCreated, decode};
use contracts::topology::ORDER_EXCHANGE;
use lapin::types::AMQPValue;
use platform::http::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};

use crate::helpers::{TestApp, WAIT, spawn_app};

/// Places an order with `headers`; answers the status and the echoed id.
async fn place(app: &TestApp, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut request = awc::Client::default().post(format!("{}/create_order", app.address));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = request.send().await.expect("POST /create_order");
    let echoed = response
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(|value| value.to_str().unwrap().to_string());
    (response.status().as_u16(), echoed)
}

fn traceparent_of(delivery: &lapin::message::Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    headers
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == TRACEPARENT_HEADER)
        .and_then(|(_, value)| match value {
            AMQPValue::LongString(text) => Some(text.to_string()),
            _ => None,
        })
}

#[actix_web::test]
async fn a_request_id_is_echoed_and_travels_with_the_orders_event() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();

    // Act
    let given = place(&app, &[(REQUEST_ID_HEADER, "checkout-42")]).await;
    let first = tap.next(WAIT).await.unwrap();

    // Assert: echoed, in the event's body and its correlation_id; not a
    // trace id, so no traceparent.
    assert_eq!(given, (201, Some("checkout-42".to_string())));
    let event = decode::<OrderCreated>(&first.data).unwrap();
    assert_eq!(event.request_id(), Some("checkout-42"));
    assert_eq!(
        first
            .properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str()),
        Some("checkout-42")
    );
    assert_eq!(traceparent_of(&first), None);
}

#[actix_web::test]
async fn a_traceparent_continues_into_the_event_and_a_missing_id_is_made_up() {
    // Arrange
    let app = spawn_app().await;
    let mut tap = app.broker.tap(ORDER_EXCHANGE).await.unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";

    // Act
    let traced = place(
        &app,
        &[(
            TRACEPARENT_HEADER,
            &format!("00-{trace}-00f067aa0ba902b7-01"),
        )],
    )
    .await;
    let traced_delivery = tap.next(WAIT).await.unwrap();
    let unnamed = place(&app, &[]).await;
    let unnamed_delivery = tap.next(WAIT).await.unwrap();

    // Assert
    assert_eq!(traced, (201, Some(trace.to_string())));
    let traceparent = traceparent_of(&traced_delivery).expect("a traceparent header");
    assert!(
        traceparent.starts_with(&format!("00-{trace}-")),
        "{traceparent}"
    );
    assert_ne!(
        traceparent,
        format!("00-{trace}-00f067aa0ba902b7-01"),
        "a new parent id"
    );
    let (status, made_up) = unnamed;
    let made_up = made_up.expect("an id is always echoed");
    assert_eq!((status, made_up.len()), (201, 32));
    let event = decode::<OrderCreated>(&unnamed_delivery.data).unwrap();
    assert_eq!(event.request_id(), Some(made_up.as_str()));
    assert!(
        traceparent_of(&unnamed_delivery).is_some_and(|t| t.starts_with(&format!("00-{made_up}-")))
    );
}

#[actix_web::test]
async fn every_answer_carries_the_request_id_errors_included() {
    let app = spawn_app().await;

    let response = awc::Client::default()
        .get(format!("{}/orders/not-a-uuid", app.address))
        .insert_header((REQUEST_ID_HEADER, "lookup-7"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers().get(REQUEST_ID_HEADER).unwrap(),
        "lookup-7"
    );
}
