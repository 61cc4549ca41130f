use contracts::events::{RejectionReason, StockEvent};
use testkit::eventually;

use crate::helpers::{STOCK_QUEUE, WAIT, spawn_app};
use crate::lifecycle::{created, publish_outcome};

#[actix_web::test]
async fn orders_are_counted_from_acceptance_to_their_final_status() {
    // Arrange: two orders accepted over HTTP.
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = app.create_order(None, None).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["order_id"].as_str().unwrap().to_string());
    }
    app.broker.wait_for_consumer(STOCK_QUEUE, WAIT).await;

    // Act: the product service's answers, one confirmed and one rejected.
    for (id, rejection) in ids.iter().zip([None, Some(RejectionReason::OutOfStock)]) {
        let order = created(id, "123", 1);
        publish_outcome(&app, &StockEvent::answering(&order, rejection)).await;
    }
    let metrics = eventually(WAIT, "both orders final and their events acked", || async {
        let metrics = testkit::scrape_metrics(&app.admin_address).await;
        let acked = metrics
            .get(r#"consumer_deliveries_total{queue="order.stock_events",settlement="acked"}"#);
        (metrics.get("order_accept_to_final_seconds_count") == Some(&2.0) && acked == Some(&2.0))
            .then_some(metrics)
    })
    .await;

    // Assert
    let value = |series: &str| metrics.get(series).copied();
    assert_eq!(
        value(r#"http_requests_total{method="POST",route="/create_order",status="201"}"#),
        Some(2.0)
    );
    assert_eq!(value(r#"orders_total{event="accepted"}"#), Some(2.0));
    assert_eq!(value(r#"orders_total{event="confirmed"}"#), Some(1.0));
    assert_eq!(value(r#"orders_total{event="rejected"}"#), Some(1.0));
    assert_eq!(
        value(r#"consumer_deliveries_total{queue="order.stock_events",settlement="acked"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"consumer_deliveries_total{queue="order.stock_events",settlement="requeued"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(r#"consumer_deliveries_in_flight{queue="order.stock_events"}"#),
        Some(0.0)
    );
    assert!(
        value("order_accept_to_final_seconds_sum").is_some_and(|sum| (0.0..10.0).contains(&sum)),
        "{metrics:?}"
    );
}
