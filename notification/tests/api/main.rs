use std::sync::atomic::Ordering;
use std::time::Duration;

use notification::actors::mailer::CountSentEmails;
use notification::config::Settings;
use notification::startup::Application;
use shared::amqp::ORDER_EXCHANGE;
use shared::events::OrderCreated;
use shared::telemetry::test_logger;
use testkit::{BrokerClient, TestVhost, eventually};

const WAIT: Duration = Duration::from_secs(15);

#[actix_web::test]
async fn each_order_created_sends_one_email_and_is_acked() {
    // Arrange
    let vhost = TestVhost::create().unwrap();
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        amqp_url: vhost.amqp_url().to_string(),
        prefetch: 8,
    };
    let app = Application::build(settings, test_logger()).unwrap();
    let (port, mailer, stats) = (app.port(), app.mailer(), app.consumer_stats());
    actix_web::rt::spawn(app.run_until_stopped());
    let broker = BrokerClient::connect(vhost.amqp_url()).await.unwrap();
    eventually(WAIT, "the notification queue", || async {
        broker.ready_count("notification.order_created").await.ok()
    })
    .await;

    // Act
    for product_id in ["123", "456"] {
        let event = OrderCreated::new(product_id.into(), 1);
        let body = serde_json::to_vec(&event).unwrap();
        broker
            .publish(ORDER_EXCHANGE, &body, Some(&event.event_id.to_string()))
            .await
            .unwrap();
    }

    // Assert
    eventually(WAIT, "two acks", || async {
        (stats.acked.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;
    assert_eq!(mailer.send(CountSentEmails).await.unwrap(), 2);
    assert_eq!(
        broker
            .ready_count("notification.order_created")
            .await
            .unwrap(),
        0
    );
    let health = awc::Client::default()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
