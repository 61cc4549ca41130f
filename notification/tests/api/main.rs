use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::{Actor, Addr};
use contracts::events::{OrderCreated, RejectionReason, StockEvent};
use contracts::topology::{ORDER_EXCHANGE, STOCK_EXCHANGE};
use foundation::telemetry::test_logger;
use messaging::broker::Settlement;
use messaging::broker::memory::InMemoryBroker;
use messaging::config::ConsumerSettings;
use messaging::consumer::ConsumerContext;
use notification::actors::OrderCreatedConsumer;
use notification::actors::mailer::{GetMailerCounters, Mailer, SEND_LEASE};
use notification::config::Settings;
use notification::domain::EmailKind;
use notification::domain::mailing::{EmailCounts, EmailOutcome};
use notification::startup::Application;
use notification::store::EmailLedger;
use platform::service::Service as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use testkit::{BrokerClient, TestDatabase, TestVhost, count, eventually};

const WAIT: Duration = Duration::from_secs(15);

/// The notification service on port 0 with its own database and vhost.
async fn start_app() -> (TestDatabase, TestVhost, Application) {
    let database = TestDatabase::migrated().await.unwrap();
    let vhost = TestVhost::create().unwrap();
    let settings = Settings {
        common: testkit::service_settings(&database, vhost.amqp_url()),
    };
    let app = Application::build(settings, test_logger()).await.unwrap();
    (database, vhost, app)
}

async fn sent_emails(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT count(*) FROM sent_emails").await
}

/// What the Mailer counted of the emails sent on `OrderCreated`.
async fn order_received_counts(mailer: &Addr<Mailer>) -> EmailCounts {
    let counters = mailer.send(GetMailerCounters).await.unwrap();
    counters.of(EmailKind::OrderReceived)
}

async fn migrated_database() -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    migration::migrate(&db).await.unwrap();
    (database, db)
}

#[actix_web::test]
async fn the_mailer_sends_one_email_per_event_even_when_delivered_twice() {
    // Arrange: the consumer and the Mailer with an in-memory broker.
    let (_database, db) = migrated_database().await;
    let broker = InMemoryBroker::new();
    let mailer = Mailer::new(EmailLedger::new(db.clone(), SEND_LEASE), test_logger()).start();
    let [first, second] = [
        OrderCreated::new("123".into(), 1),
        OrderCreated::new("456".into(), 2),
    ];
    let enqueue = |event: &OrderCreated| {
        broker.enqueue(
            serde_json::to_vec(event).unwrap(),
            Some(&event.event_id.to_string()),
        )
    };
    enqueue(&first);
    broker.enqueue("[1, 2, 3]", Some("garbage"));
    enqueue(&second);

    // Act: the first event again, once the others are settled.
    let consumer = OrderCreatedConsumer::new(
        mailer.clone().recipient(),
        ConsumerContext::for_database(
            "notification",
            &db,
            &ConsumerSettings::default(),
            test_logger(),
        ),
    );
    let _consumer = consumer.start_on(broker.subscribe());
    broker.wait_for_settlements(3, WAIT).await;
    enqueue(&first);
    let settled = broker.wait_for_settlements(4, WAIT).await;

    // Assert
    assert_eq!(
        order_received_counts(&mailer).await,
        EmailCounts {
            sent: 2,
            already_sent: 1,
            in_progress: 0,
            resent: 0
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
async fn an_email_whose_sender_died_before_marking_it_is_sent_again_once() {
    // Arrange: two emails recorded and never marked sent: one by a process
    // that died ten minutes ago, one claimed just now by a live sender.
    let (_database, db) = migrated_database().await;
    let others = EmailLedger::new(db.clone(), SEND_LEASE);
    let [lost, in_progress] = [
        OrderCreated::new("123".into(), 1),
        OrderCreated::new("456".into(), 1),
    ];
    let emails: Vec<_> = [&lost, &in_progress]
        .map(|event| event.clone().into())
        .to_vec();
    others.record_all(&emails, &[]).await.unwrap();
    db.execute_unprepared(&format!(
        "UPDATE sent_emails SET claimed_at = now() - interval '10 minutes' WHERE event_id = '{}'",
        lost.event_id
    ))
    .await
    .unwrap();

    // Act: a Mailer starts (and sweeps); the live sender's event is redelivered.
    let mailer = Mailer::new(EmailLedger::new(db.clone(), SEND_LEASE), test_logger()).start();
    eventually(WAIT, "the lost email to be sent", || async {
        let sent = count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL",
        )
        .await;
        (sent == 1).then_some(())
    })
    .await;
    let redelivered = mailer
        .send(notification::actors::mailer::SendEmail(vec![
            in_progress.clone().into(),
        ]))
        .await
        .unwrap()
        .unwrap();

    // Assert: the lost one sent once; the other left to its live sender.
    assert!(matches!(redelivered[..], [Ok(EmailOutcome::InProgress)]));
    assert_eq!(
        order_received_counts(&mailer).await,
        EmailCounts {
            sent: 1,
            already_sent: 0,
            in_progress: 1,
            resent: 1
        }
    );
    let sent_id = count(
        &db,
        &format!(
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL AND event_id = '{}'",
            lost.event_id
        ),
    )
    .await;
    assert_eq!(sent_id, 1);
}

#[actix_web::test]
async fn each_order_created_on_the_exchange_sends_one_email_and_is_acked() {
    // Arrange
    let (database, vhost, app) = start_app().await;
    let (port, admin_port, mailer) = (app.port(), app.admin_port(), app.mailer());
    let stats = app.consumer_stats("notification.order_created");
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
    assert_eq!(order_received_counts(&mailer).await.sent, 2);
    assert_eq!(sent_emails(&database.connect().await).await, 2);
    let metrics = testkit::scrape_metrics(&format!("http://127.0.0.1:{admin_port}")).await;
    let value = |series: &str| metrics.get(series).copied();
    assert_eq!(
        value(r#"emails_total{kind="order_received",result="sent"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"emails_total{kind="order_confirmed",result="sent"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(
            r#"consumer_deliveries_total{queue="notification.order_created",settlement="acked"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        value(r#"consumer_deliveries_total{queue="notification.stock_events",settlement="acked"}"#),
        Some(0.0)
    );
    assert_eq!(
        broker
            .ready_count("notification.order_created")
            .await
            .unwrap(),
        0
    );
    let health = awc::Client::default()
        .get(format!("http://127.0.0.1:{admin_port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    testkit::openapi::assert_describes(
        &format!("http://127.0.0.1:{port}"),
        &<notification::routes::NotificationApi as platform::http::Api>::route_table(),
    )
    .await;
}

#[actix_web::test]
async fn stock_outcomes_send_a_confirmation_or_an_apology_once() {
    // Arrange
    let (database, vhost, app) = start_app().await;
    let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
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

    // Assert: one email of each kind, counted under its kind.
    let metrics = eventually(WAIT, "three stock events acked", || async {
        let metrics = testkit::scrape_metrics(&admin_address).await;
        let acked =
            r#"consumer_deliveries_total{queue="notification.stock_events",settlement="acked"}"#;
        (metrics.get(acked) == Some(&3.0)).then_some(metrics)
    })
    .await;
    let value = |kind: &str, result: &str| {
        let series = format!(r#"emails_total{{kind="{kind}",result="{result}"}}"#);
        metrics.get(&series).copied()
    };
    assert_eq!(value("order_confirmed", "sent"), Some(1.0));
    assert_eq!(value("out_of_stock", "sent"), Some(1.0));
    assert_eq!(value("out_of_stock", "resent"), Some(0.0));
    assert_eq!(value("order_received", "sent"), Some(0.0));
    // The duplicate came either after the first was sent or while it was.
    let skipped = value("out_of_stock", "already_sent").zip(value("out_of_stock", "in_progress"));
    assert_eq!(skipped.map(|(after, during)| after + during), Some(1.0));
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

#[actix_web::test]
async fn a_database_that_refuses_new_sessions_pauses_the_consumer_and_dead_letters_nothing() {
    // Arrange: the Mailer behind a consumer, on a queue whose delivery limit
    // (2) would dead-letter a message handed back twice; then the database
    // ends its sessions and refuses new ones, as during maintenance
    // (SQLSTATE 55000 on connect: an outage, not the messages' fault).
    let (database, db) = migrated_database().await;
    let broker = InMemoryBroker::with_delivery_limit(2);
    let mailer = Mailer::new(EmailLedger::new(db.clone(), SEND_LEASE), test_logger()).start();
    let consumer = OrderCreatedConsumer::new(
        mailer.recipient(),
        ConsumerContext::for_database(
            "notification",
            &db,
            &ConsumerSettings::default(),
            test_logger(),
        ),
    );
    let _consumer = consumer.start_on(broker.subscribe());
    database.refuse_connections(true).await;

    // Act: five orders arrive while it refuses; then it takes sessions again.
    for _ in 0..5 {
        let event = OrderCreated::new("123".into(), 1);
        broker.enqueue(
            serde_json::to_vec(&event).unwrap(),
            Some(&event.event_id.to_string()),
        );
    }
    eventually(WAIT, "the consumer to pause", || async {
        broker.paused().then_some(())
    })
    .await;
    database.refuse_connections(false).await;
    // The acks follow the commit: wait for them, not for the rows.
    let acked = || {
        broker
            .settlements()
            .iter()
            .filter(|(_, how)| *how == Settlement::Ack)
            .count()
    };
    eventually(WAIT, "five deliveries acked", || async {
        (acked() >= 5).then_some(())
    })
    .await;

    // Assert: the orders waited for the database and were each emailed;
    // none was handed back against the delivery limit, none dead-lettered.
    assert_eq!(acked(), 5);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL"
        )
        .await,
        5
    );
    assert!(
        broker.dead_lettered().is_empty(),
        "{:?}",
        broker.dead_lettered()
    );
    let settlements = broker.settlements();
    assert!(
        settlements.iter().all(|(_, how)| *how != Settlement::Retry),
        "{settlements:?}"
    );
}

#[actix_web::test]
async fn a_redelivered_batch_with_nothing_new_to_record_is_only_marked() {
    // Arrange: an email recorded and sent, but not marked: the outage that
    // took the mark leaves the Mailer a batch with nothing new to record.
    let (_database, db) = migrated_database().await;
    let ledger = EmailLedger::new(db.clone(), SEND_LEASE);
    let email = notification::domain::Email::from(OrderCreated::new("123".into(), 1));
    ledger
        .record_all(std::slice::from_ref(&email), &[])
        .await
        .unwrap();

    // Act: the redelivery records no email, then marks the one sent.
    let recorded = ledger.record_all(&[], &[]).await;
    ledger.mark_all_sent(&[email.event_id]).await.unwrap();

    // Assert
    assert_eq!(recorded.unwrap(), vec![]);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn an_email_whose_mark_fails_in_a_failover_is_sent_once_by_two_replicas() {
    // Arrange: two replicas' Mailers on one database, with a short lease;
    // marking emails sent fails (57P01: the server is shutting down, as in
    // a failover), right between sending and marking.
    use notification::actors::mailer::{SendEmail, SendUnsentEmails};
    let (_database, db) = migrated_database().await;
    let lease = Duration::from_secs(2);
    let first = Mailer::new(EmailLedger::new(db.clone(), lease), test_logger()).start();
    let second = Mailer::new(EmailLedger::new(db.clone(), lease), test_logger()).start();
    db.execute_unprepared(
        "CREATE FUNCTION failover() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'failing over' USING ERRCODE = '57P01'; END $$;
         CREATE TRIGGER failover BEFORE UPDATE ON sent_emails
         FOR EACH STATEMENT EXECUTE FUNCTION failover();",
    )
    .await
    .unwrap();
    let event = OrderCreated::new("123".into(), 1);
    let email = notification::domain::Email::from(event.clone());

    // Act: the first replica sends, its mark fails; the database is back.
    let answer = first.send(SendEmail(vec![email.clone()])).await.unwrap();
    db.execute_unprepared("DROP TRIGGER failover ON sent_emails")
        .await
        .unwrap();

    // Assert: the sender marks it by itself, without a redelivery.
    eventually(WAIT, "the email marked sent by its sender", || async {
        let marked = count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL",
        )
        .await;
        (marked == 1).then_some(())
    })
    .await;
    assert!(
        matches!(answer.as_deref(), Ok([Ok(EmailOutcome::Sent)])),
        "sent is sent, whatever became of the mark: {answer:?}"
    );

    // Act: once the lease has run out, the other replica sweeps, and the
    // event comes to it again.
    eventually(WAIT, "the lease to run out", || async {
        let leased = count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE claimed_at > now() - interval '2 seconds'",
        )
        .await;
        (leased == 0).then_some(())
    })
    .await;
    let swept = second.send(SendUnsentEmails).await.unwrap().unwrap();
    let redelivered = second.send(SendEmail(vec![email])).await.unwrap();

    // Assert: sent once in all.
    assert_eq!(swept, 0);
    assert!(
        matches!(redelivered.as_deref(), Ok([Ok(EmailOutcome::AlreadySent)])),
        "{redelivered:?}"
    );
    assert_eq!(order_received_counts(&first).await.sent, 1);
    assert_eq!(order_received_counts(&second).await.sent, 0);
}

#[actix_web::test]
async fn an_email_recorded_without_its_sender_learning_it_is_sent_by_that_sender_without_waiting_for_the_lease()
 {
    // Arrange: two replicas with the full lease; the first one's record of
    // two emails commits, but the answer is lost (a failover), so it sent
    // neither: both stay claimed by it.
    use notification::actors::mailer::{SendEmail, SendUnsentEmails};
    let (_database, db) = migrated_database().await;
    let first_ledger = EmailLedger::new(db.clone(), SEND_LEASE);
    let first = Mailer::new(first_ledger.clone(), test_logger()).start();
    let second = Mailer::new(EmailLedger::new(db.clone(), SEND_LEASE), test_logger()).start();
    // Its start-up sweep done: what it finds from now on is the test's.
    first.send(SendUnsentEmails).await.unwrap().unwrap();
    let [swept, redelivered]: [notification::domain::Email; 2] = [
        OrderCreated::new("123".into(), 1).into(),
        OrderCreated::new("456".into(), 1).into(),
    ];
    first_ledger
        .record_all(&[swept.clone(), redelivered.clone()], &[])
        .await
        .unwrap();

    // Act: one event comes again to the other replica, which leaves it to
    // its claimant; the other comes again to the first replica; the first
    // replica sweeps.
    let at_second = second.send(SendEmail(vec![swept])).await.unwrap();
    let at_first = first.send(SendEmail(vec![redelivered])).await.unwrap();
    let sweep = first.send(SendUnsentEmails).await.unwrap().unwrap();

    // Assert: each sent once, by its claimant, long before the lease ends.
    assert!(
        matches!(at_second.as_deref(), Ok([Ok(EmailOutcome::InProgress)])),
        "{at_second:?}"
    );
    assert!(
        matches!(at_first.as_deref(), Ok([Ok(EmailOutcome::Sent)])),
        "{at_first:?}"
    );
    assert_eq!(sweep, 1);
    eventually(WAIT, "both emails marked sent", || async {
        let marked = count(
            &db,
            "SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL",
        )
        .await;
        (marked == 2).then_some(())
    })
    .await;
    let first_counts = order_received_counts(&first).await;
    assert_eq!((first_counts.sent, first_counts.resent), (2, 0));
    assert_eq!(order_received_counts(&second).await.sent, 0);
}
