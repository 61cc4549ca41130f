use contracts::events::OrderCreated;
use testkit::eventually;

use crate::helpers::{WAIT, spawn_app};

#[actix_web::test]
async fn the_metrics_agree_with_what_the_service_did() {
    // Arrange
    let app = spawn_app().await;
    let orders = 12;

    // Act: 10 orders that fit, 2 that do not (stock of 456 is 50), and reads.
    for quantity in [5; 10].into_iter().chain([100, 100]) {
        app.publish(&OrderCreated::new("456".into(), quantity))
            .await;
    }
    app.wait_settled(orders).await;
    for _ in 0..3 {
        assert_eq!(app.get_products().await.0, 200);
    }
    let metrics = eventually(WAIT, "every stock event published", || async {
        let metrics = testkit::scrape_metrics(&app.admin_address).await;
        (metrics.get("outbox_published_total") == Some(&(orders as f64))).then_some(metrics)
    })
    .await;

    // Assert: N orders consumed, N events published, nothing left behind,
    // and the reads counted by route and status.
    let value = |series: &str| metrics.get(series).copied();
    assert_eq!(
        value(r#"consumer_deliveries_total{queue="product.order_created",settlement="acked"}"#),
        Some(orders as f64)
    );
    for settlement in ["requeued", "parked", "dead_lettered"] {
        let series = format!(
            r#"consumer_deliveries_total{{queue="product.order_created",settlement="{settlement}"}}"#
        );
        assert_eq!(value(&series), Some(0.0), "{series}");
    }
    assert_eq!(
        value(r#"consumer_deliveries_in_flight{queue="product.order_created"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(r#"consumer_settle_failures_total{queue="product.order_created"}"#),
        Some(0.0)
    );
    // Group commits: at most one batch per order, at least one in all.
    assert!(
        value(r#"consumer_batches_total{queue="product.order_created"}"#)
            .is_some_and(|batches| (1.0..=orders as f64).contains(&batches)),
        "{metrics:?}"
    );
    assert_eq!(
        value(r#"reservations_total{outcome="reserved"}"#),
        Some(10.0)
    );
    assert_eq!(
        value(r#"reservations_total{outcome="out_of_stock"}"#),
        Some(2.0)
    );
    assert_eq!(value("outbox_backlog"), Some(0.0));
    assert_eq!(value("outbox_oldest_unpublished_seconds"), Some(0.0));
    assert_eq!(
        value(r#"http_requests_total{method="GET",route="/products",status="200"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(r#"http_request_duration_seconds_count{method="GET",route="/products"}"#),
        Some(3.0)
    );
}
