//! A delivery the broker would not let the subscription settle goes back
//! to the queue at once, and comes again on a reopened channel.

use std::time::Duration;

use contracts::topology::{ORDER_CREATED, ORDER_EXCHANGE, QueueNames};
use foundation::health::ServiceHealth;
use foundation::telemetry::test_logger;
use futures_util::StreamExt;
use messaging::broker::Settlement;
use testkit::{BrokerClient, TestVhost, eventually};

use crate::helpers::{WAIT, WORK_QUEUE};

/// Far below the broker's consumer timeout (30 min), after which an
/// unsettled delivery would come back anyway.
const DEADLINE: Duration = Duration::from_secs(20);

#[actix_web::test]
async fn a_delivery_that_cannot_be_settled_comes_again_at_once() {
    // Arrange: a subscription holding one delivery, on a queue that from
    // now on refuses every message, so parking it fails (the broker nacks
    // the parked copy) while the channel stays open.
    let vhost = TestVhost::create().unwrap();
    let mut subscription = messaging::amqp::subscribe(
        vhost.amqp_url(),
        QueueNames::new("product", ORDER_CREATED),
        1,
        ServiceHealth::new(),
        test_logger(),
    );
    let mut attached = subscription.attached.clone();
    let _ = tokio::time::timeout(WAIT, attached.wait_for(|attached| *attached))
        .await
        .expect("consuming")
        .is_ok();
    let broker = BrokerClient::connect(vhost.amqp_url()).await.unwrap();
    broker
        .publish(ORDER_EXCHANGE, b"{}", Some("event-1"))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(WAIT, subscription.deliveries.next())
        .await
        .expect("a delivery")
        .unwrap();
    let api = testkit::broker::management_api();
    api.call(
        "PUT",
        &format!("/policies/{}/refuse-all", vhost.name()),
        Some(
            r#"{"pattern": "^product\\.order_created$", "apply-to": "queues",
                "definition": {"max-length": 0, "overflow": "reject-publish"}}"#,
        ),
    )
    .unwrap();
    eventually(WAIT, "the policy applied to the queue", || async {
        let queue = api
            .json(
                "GET",
                &format!("/queues/{}/{WORK_QUEUE}", vhost.name()),
                None,
            )
            .ok()?;
        (queue["policy"] == "refuse-all").then_some(())
    })
    .await;
    // A quorum queue's limit is not strict: it refuses publishes once it
    // is over it, which one more message makes it.
    broker
        .publish(ORDER_EXCHANGE, b"{}", Some("event-2"))
        .await
        .unwrap();
    eventually(WAIT, "the queue over its limit", || async {
        (vhost.queue_totals(WORK_QUEUE).ok()?.ready == 1).then_some(())
    })
    .await;

    // Act
    let settled = delivery.settle(Settlement::Park).await;
    let again = tokio::time::timeout(DEADLINE, subscription.deliveries.next()).await;

    // Assert: refused, and back at once on a new channel, not after the
    // broker's consumer timeout.
    assert!(settled.is_err(), "the parked copy was refused");
    let again = again
        .expect("the delivery comes again within the deadline")
        .unwrap();
    assert!(again.redelivered);
    assert_eq!(again.message_id.as_deref(), Some("event-1"));
    again.settle(Settlement::Ack).await.unwrap();
    subscription.control.close().await;
}
