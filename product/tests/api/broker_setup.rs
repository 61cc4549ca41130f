//! Setting up on a broker that accepted the connection and then stopped
//! answering: each step after connecting has a timeout, so the service
//! gives up on that connection and opens another instead of waiting for
//! ever.

use std::time::Duration;

use messaging::amqp::{AmqpPublisher, SETUP_TIMEOUT};

use contracts::topology::{ORDER_CREATED, ORDER_EXCHANGE, QueueNames};
use foundation::health::ServiceHealth;
use foundation::telemetry::test_logger;
use messaging::broker::{OutgoingMessage, Publisher};
use testkit::{TcpProxy, TestVhost};

/// Longer than a stalled setup step and a reconnect take, shorter than
/// forever.
const DEADLINE: Duration = Duration::from_secs(30);

fn stalling_broker(vhost: &TestVhost) -> (TcpProxy, String) {
    let proxy = TcpProxy::start(testkit::amqp_address());
    proxy.stall_next_amqp_connection();
    let url = testkit::via_port(vhost.amqp_url(), proxy.port());
    (proxy, url)
}

#[actix_web::test]
async fn a_subscription_whose_setup_stalls_reconnects_and_consumes() {
    // Arrange: the first connection opens, then the broker stops answering.
    let vhost = TestVhost::create().unwrap();
    let (proxy, url) = stalling_broker(&vhost);

    // Act
    let subscription = messaging::amqp::subscribe(
        &url,
        QueueNames::new("product", ORDER_CREATED),
        1,
        ServiceHealth::new(),
        test_logger(),
    );
    let mut attached = subscription.attached.clone();
    // Not keeping the `Ref` that `wait_for` answers: it would hold the
    // channel's lock against the subscription.
    let consuming = tokio::time::timeout(DEADLINE, attached.wait_for(|attached| *attached))
        .await
        .is_ok_and(|seen| seen.is_ok());

    // Assert: consuming on a second connection.
    assert!(
        consuming,
        "not consuming within {DEADLINE:?} of a setup that stalled"
    );
    assert_eq!(proxy.stalled_amqp_connections(), 1);
    subscription.control.close().await;
}

#[actix_web::test]
async fn a_publish_whose_setup_stalls_fails_in_time_and_the_next_one_goes_through() {
    // Arrange
    let vhost = TestVhost::create().unwrap();
    let (proxy, url) = stalling_broker(&vhost);
    let publisher = AmqpPublisher::new(&url, "test-publisher", &test_logger());
    let message = OutgoingMessage {
        exchange: ORDER_EXCHANGE.into(),
        message_id: "event-1".into(),
        body: b"{}".to_vec(),
        correlation_id: None,
    };

    // Act
    let stalled =
        tokio::time::timeout(DEADLINE, publisher.publish_all(vec![message.clone()])).await;
    let retried = tokio::time::timeout(DEADLINE, publisher.publish_all(vec![message])).await;

    // Assert
    let stalled = stalled.expect("the stalled setup gives up in time");
    assert!(
        stalled[0].as_ref().is_err_and(|e| e
            .to_string()
            .contains(&format!("within {} s", SETUP_TIMEOUT.as_secs()))),
        "{stalled:?}"
    );
    assert!(retried.expect("the next publish answers")[0].is_ok());
    assert_eq!(proxy.stalled_amqp_connections(), 1);
}
