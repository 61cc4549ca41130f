use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::Actor;
use notification::actors::AmqpConsumer;
use notification::actors::mailer::{GetMailerCounters, Mailer, MailerCounters, SentLedger};
use notification::config::Settings;
use notification::startup::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use shared::amqp::{ORDER_EXCHANGE, STOCK_EXCHANGE};
use shared::broker::Settlement;
use shared::broker::memory::InMemoryBroker;
use shared::config::ConsumerSettings;
use shared::consumer::ConsumerStats;
use shared::events::{OrderCreated, RejectionReason, StockEvent};
use shared::telemetry::test_logger;
use testkit::{BrokerClient, TestDatabase, TestVhost, eventually};

const WAIT: Duration = Duration::from_secs(15);

/// The notification service on port 0 with its own database and vhost.
async fn start_app() -> (TestDatabase, TestVhost, Application) {
    let database = TestDatabase::create().await.unwrap();
    let vhost = TestVhost::create().unwrap();
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database.url().to_string(),
        amqp_url: vhost.amqp_url().to_string(),
        consumer: ConsumerSettings::default(),
    };
    let app = Application::build(settings, test_logger()).await.unwrap();
    (database, vhost, app)
}

async fn sent_emails(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) FROM sent_emails",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[actix_web::test]
async fn the_mailer_sends_one_email_per_event_even_when_delivered_twice() {
    // Arrange: the consumer and the Mailer with an in-memory broker.
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    migration::migrate(&db).await.unwrap();
    let broker = InMemoryBroker::new();
    let mailer = Mailer::new(SentLedger::new(db.clone()), test_logger()).start();
    let [first, second] = [
        OrderCreated::new("123".into(), 1),
        OrderCreated::new("456".into(), 2),
    ];
    let delivery = |event: &OrderCreated| {
        broker.delivery(
            serde_json::to_vec(event).unwrap(),
            Some(&event.event_id.to_string()),
        )
    };
    let deliveries = vec![
        delivery(&first),
        broker.delivery("[1, 2, 3]", Some("garbage")),
        delivery(&second),
        delivery(&first),
    ];

    // Act
    let consumer = AmqpConsumer::new(
        mailer.clone().recipient(),
        Arc::new(ConsumerStats::default()),
        test_logger(),
    );
    let _consumer = consumer.start_on(futures_util::stream::iter(deliveries));
    let settled = broker.wait_for_settlements(4, WAIT).await;

    // Assert
    assert_eq!(
        mailer.send(GetMailerCounters).await.unwrap(),
        MailerCounters {
            sent: 2,
            already_sent: 1
        }
    );
    assert_eq!(sent_emails(&db).await, 2);
    let acked = settled
        .iter()
        .filter(|(_, s)| *s == Settlement::Ack)
        .count();
    assert_eq!(acked, 3);
    assert!(settled.contains(&(Some("garbage".into()), Settlement::DeadLetter)));
}

#[actix_web::test]
async fn each_order_created_on_the_exchange_sends_one_email_and_is_acked() {
    // Arrange
    let (database, vhost, app) = start_app().await;
    let (port, mailer, stats) = (app.port(), app.mailer(), app.consumer_stats());
    actix_web::rt::spawn(app.run_until_stopped());
    let broker = BrokerClient::connect(vhost.amqp_url()).await.unwrap();
    broker
        .wait_for_consumer("notification.order_created", WAIT)
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
    assert_eq!(mailer.send(GetMailerCounters).await.unwrap().sent, 2);
    assert_eq!(sent_emails(&database.connect().await).await, 2);
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
    testkit::openapi::assert_describes(
        &format!("http://127.0.0.1:{port}"),
        &notification::routes::route_table(),
    )
    .await;
}

#[actix_web::test]
async fn stock_outcomes_send_a_confirmation_or_an_apology_once() {
    // Arrange
    let (database, vhost, app) = start_app().await;
    let mailer = app.mailer();
    actix_web::rt::spawn(app.run_until_stopped());
    let broker = BrokerClient::connect(vhost.amqp_url()).await.unwrap();
    broker
        .wait_for_consumer("notification.stock_events", WAIT)
        .await;
    let order = OrderCreated::new("123".into(), 1);
    let confirmed = StockEvent::answering(&order, None);
    let sorry = StockEvent::answering(
        &OrderCreated::new("123".into(), 99),
        Some(RejectionReason::OutOfStock),
    );

    // Act: the apology delivered twice.
    for event in [&confirmed, &sorry, &sorry] {
        let body = serde_json::to_vec(event).unwrap();
        broker
            .publish(
                STOCK_EXCHANGE,
                &body,
                Some(&event.outcome().event_id.to_string()),
            )
            .await
            .unwrap();
    }

    // Assert
    eventually(WAIT, "three stock events handled", || async {
        let counters = mailer.send(GetMailerCounters).await.unwrap();
        (counters.sent + counters.already_sent == 3).then_some(())
    })
    .await;
    assert_eq!(
        mailer.send(GetMailerCounters).await.unwrap(),
        MailerCounters {
            sent: 2,
            already_sent: 1
        }
    );
    let db = database.connect().await;
    let kinds = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kind FROM sent_emails ORDER BY kind",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(kinds, ["order_confirmed", "out_of_stock"]);
}
