use std::sync::atomic::Ordering;
use std::time::Duration;

use contracts::events::OrderCreated;
use contracts::topology::ORDER_EXCHANGE;
use product::domain::stock::StockCounters;
use testkit::{TestVhost, eventually};

use crate::helpers::{DEAD_QUEUE, WAIT, WORK_QUEUE, spawn_app, spawn_app_on, spawn_app_with};

#[actix_web::test]
async fn an_order_decrements_stock_once_even_when_delivered_twice() {
    // Arrange
    let app = spawn_app().await;
    let event = OrderCreated::new("123".into(), 1);

    // Act: the same event twice, as a redelivery would bring it.
    app.publish(&event).await;
    app.publish(&event).await;
    app.wait_settled(2).await;

    // Assert
    assert_eq!(app.stock("123").await, 9);
    assert_eq!(app.processed_events().await, 1);
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), 2);
    let counters = app.counters().await;
    assert_eq!((counters.reserved, counters.already_applied), (1, 1));
    assert_eq!(app.broker.ready_count(WORK_QUEUE).await.unwrap(), 0);
}

#[actix_web::test]
async fn orders_that_cannot_be_filled_change_nothing_and_are_acked() {
    let app = spawn_app().await;

    app.publish(&OrderCreated::new("123".into(), 11)).await;
    app.publish(&OrderCreated::new("no-such-product".into(), 1))
        .await;
    app.wait_settled(2).await;

    assert_eq!(app.stock("123").await, 10);
    let counters = app.counters().await;
    assert_eq!((counters.out_of_stock, counters.unknown_product), (1, 1));
    // Decided once and recorded: a redelivery after a restock changes nothing.
    assert_eq!(app.processed_events().await, 2);
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn malformed_messages_are_dead_lettered_and_do_not_block_the_queue() {
    // Arrange
    let app = spawn_app().await;
    let valid = OrderCreated::new("123".into(), 1);

    // Act: garbage and an event with a missing field around a valid order.
    app.broker
        .publish(ORDER_EXCHANGE, b"not json at all", Some("garbage-1"))
        .await
        .unwrap();
    app.broker
        .publish(
            ORDER_EXCHANGE,
            br#"{"product_id":"123","quantity":1}"#,
            Some("garbage-2"),
        )
        .await
        .unwrap();
    app.publish(&valid).await;
    app.wait_settled(3).await;

    // Assert
    assert_eq!(app.stock("123").await, 9);
    assert_eq!(app.consumer_stats.dead_lettered.load(Ordering::SeqCst), 2);
    let dead = eventually(WAIT, "two dead letters", || async {
        let n = app.broker.ready_count(DEAD_QUEUE).await.unwrap();
        (n == 2).then_some(n)
    })
    .await;
    assert_eq!(dead, 2);
    let first = app.broker.take(DEAD_QUEUE).await.unwrap().unwrap();
    assert_eq!(first.data, b"not json at all");
}

#[actix_web::test]
async fn concurrent_orders_never_oversell() {
    // Arrange: stock of 123 is 10.
    let app = spawn_app().await;
    let events: Vec<_> = (0..15)
        .map(|_| OrderCreated::new("123".into(), 1))
        .collect();

    // Act
    for event in &events {
        app.publish(event).await;
    }
    app.wait_settled(15).await;

    // Assert
    assert_eq!(app.stock("123").await, 0);
    assert_eq!(
        app.counters().await,
        StockCounters {
            reserved: 10,
            out_of_stock: 5,
            unknown_product: 0,
            already_applied: 0,
            restocks: 0,
        }
    );
}

#[actix_web::test]
async fn a_database_outage_parks_deliveries_without_burning_the_delivery_limit() {
    // Arrange: the service reaches PostgreSQL through a proxy, with a
    // delivery limit of 2; the database then becomes unreachable.
    let proxy = testkit::TcpProxy::start(testkit::pg_address());
    let vhost = TestVhost::with_delivery_limit(2).expect("a test vhost");
    let app = spawn_app_on(vhost, |settings, database| {
        settings.common.database_url = database.url_via(proxy.port());
    })
    .await;
    let stock = app.stock("456").await;
    proxy.cut();

    // Act: three orders meet the outage, which lasts longer than two
    // requeues with backoff would take to dead-letter them.
    for _ in 0..3 {
        app.publish(&OrderCreated::new("456".into(), 1)).await;
    }
    // Every order goes back to the queue, uncounted, and stays there: the
    // consumer has paused and holds nothing.
    eventually(WAIT, "the three orders parked in the queue", || async {
        let parked = app.consumer_stats.parked.load(Ordering::SeqCst);
        let ready = app.broker.ready_count(WORK_QUEUE).await.ok()?;
        let in_flight = app.consumer_stats.in_flight.load(Ordering::SeqCst);
        (parked >= 1 && ready == 3 && in_flight == 0).then_some(())
    })
    .await;
    // The outage outlasts two requeues with backoff: the service tries the
    // database again and again meanwhile (its probe, with backoff).
    let refused = proxy.refused_connections();
    eventually(WAIT, "four more attempts to reach the database", || async {
        (proxy.refused_connections() >= refused + 4).then_some(())
    })
    .await;
    proxy.restore();

    // Assert: each applied once, none requeued or dead-lettered.
    app.wait_settled(3).await;
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), 3);
    assert_eq!(app.consumer_stats.retried.load(Ordering::SeqCst), 0);
    assert_eq!(app.broker.ready_count(DEAD_QUEUE).await.unwrap(), 0);
    assert_eq!(app.processed_events().await, 3);
    assert_eq!(app.stock("456").await, stock - 3);
}

#[actix_web::test]
async fn sessions_opened_on_a_standby_are_not_kept_once_the_primary_is_back() {
    // Arrange
    let app = spawn_app().await;
    let stock = app.stock("456").await;

    // Act: for a while the database address leads to a server that takes
    // no writes, as it can to a standby after a failover; an order arrives
    // then, and the consumer waits the outage out.
    app.database.act_as_standby(true).await;
    app.publish(&OrderCreated::new("456".into(), 1)).await;
    eventually(WAIT, "the order parked through the outage", || async {
        (app.consumer_stats.parked.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    app.database.act_as_standby(false).await;

    // Assert: applied on the primary, not failing for ever on sessions kept
    // from the standby.
    app.wait_settled(1).await;
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), 1);
    assert_eq!(app.processed_events().await, 1);
    assert_eq!(app.stock("456").await, stock - 1);
}

/// Makes every write of the stock keeper's work fail with `sqlstate` while
/// reads keep working, as a full disk (53100), a statement timeout (57014),
/// a lock timeout (55P03) or a deadlock (40P01) does.
async fn fail_writes_with(db: &sea_orm::DatabaseConnection, sqlstate: &str) {
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(&format!(
        "CREATE OR REPLACE FUNCTION degraded() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'degraded database' USING ERRCODE = '{sqlstate}'; END $$;
         CREATE TRIGGER degraded BEFORE INSERT ON processed_events
         FOR EACH STATEMENT EXECUTE FUNCTION degraded();"
    ))
    .await
    .expect("the trigger that fails writes");
}

async fn heal_writes(db: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("DROP TRIGGER degraded ON processed_events")
        .await
        .expect("dropping the trigger");
}

#[actix_web::test]
async fn a_database_that_answers_reads_but_fails_writes_is_waited_out_never_dead_lettered() {
    // Arrange: a delivery limit of 2, and a session of our own.
    let vhost = TestVhost::with_delivery_limit(2).expect("a test vhost");
    let app = spawn_app_on(vhost, |_, _| {}).await;
    let admin = app.database.connect().await;
    let stock = app.stock("456").await;
    let mut published = 0;

    for sqlstate in ["53100", "57014", "55P03", "40P01"] {
        // Act: writes fail while an order arrives; it meets the failure
        // again after each probe (more often than the delivery limit)
        // until writes work again.
        fail_writes_with(&admin, sqlstate).await;
        let parked_before = app.consumer_stats.parked.load(Ordering::SeqCst);
        app.publish(&OrderCreated::new("456".into(), 1)).await;
        published += 1;
        eventually(
            WAIT,
            &format!("the order parked 3 times ({sqlstate})"),
            || async {
                let parked = app.consumer_stats.parked.load(Ordering::SeqCst);
                (parked >= parked_before + 3).then_some(())
            },
        )
        .await;
        heal_writes(&admin).await;
        app.wait_settled(published).await;
    }

    // Act: a real lock held on the stock for longer than the lock timeout.
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let holder = admin.begin().await.unwrap();
    holder
        .execute_unprepared("LOCK TABLE products IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let parked_before = app.consumer_stats.parked.load(Ordering::SeqCst);
    app.publish(&OrderCreated::new("456".into(), 1)).await;
    published += 1;
    eventually(
        Duration::from_secs(30),
        "the order parked by a held lock",
        || async {
            (app.consumer_stats.parked.load(Ordering::SeqCst) > parked_before).then_some(())
        },
    )
    .await;
    holder.commit().await.unwrap();

    // Assert: every order applied once; nothing returned as its own fault,
    // nothing dead.
    app.wait_settled(published).await;
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), published);
    assert_eq!(app.consumer_stats.retried.load(Ordering::SeqCst), 0);
    assert_eq!(app.consumer_stats.dead_lettered.load(Ordering::SeqCst), 0);
    assert_eq!(app.broker.ready_count(DEAD_QUEUE).await.unwrap(), 0);
    assert_eq!(app.processed_events().await, published as i64);
    assert_eq!(app.stock("456").await, stock - published as i64);
}

#[actix_web::test]
async fn the_probe_that_resumes_consumers_needs_a_write_not_only_a_read() {
    // Arrange: a database that answers reads and fails every write.
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let admin = app.database.connect().await;
    let probe = foundation::db::write_probe(&app.db, "product");
    admin
        .execute_unprepared(
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$;
             CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON heartbeats
             FOR EACH STATEMENT EXECUTE FUNCTION disk_full();",
        )
        .await
        .unwrap();

    // Act
    let read = foundation::db::probe(&app.db)().await;
    let degraded = probe().await;
    admin
        .execute_unprepared("DROP TRIGGER disk_full ON heartbeats")
        .await
        .unwrap();
    let healed = probe().await;

    // Assert
    assert_eq!(read, Ok(()), "reads still work");
    let error = degraded.unwrap_err();
    assert!(error.contains("could not extend file"), "{error}");
    assert_eq!(healed, Ok(()));
}

#[actix_web::test]
async fn an_oversize_message_is_dead_lettered_undecoded_and_the_queue_goes_on() {
    // Arrange: a consumer limit of 64 KiB (under the broker's own, which
    // the RabbitMQ configs shipped here set to 1 MiB and would refuse a
    // larger publish with), and a valid order padded with 128 KiB of white
    // space: decoded, it would take stock like any other.
    let app =
        spawn_app_with(|settings, _| settings.common.consumer.max_message_bytes = 64 * 1024).await;
    let (before, oversize, after) = (
        OrderCreated::new("123".into(), 1),
        OrderCreated::new("123".into(), 5),
        OrderCreated::new("123".into(), 1),
    );
    let mut padded = serde_json::to_vec(&oversize).unwrap();
    padded.extend(std::iter::repeat_n(b' ', 128 * 1024));

    // Act
    app.publish(&before).await;
    app.broker
        .publish(
            ORDER_EXCHANGE,
            &padded,
            Some(&oversize.event_id.to_string()),
        )
        .await
        .unwrap();
    app.publish(&after).await;
    app.wait_settled(3).await;

    // Assert: the two around it applied, it in the dead-letter queue as sent.
    assert_eq!(app.consumer_stats.acked.load(Ordering::SeqCst), 2);
    assert_eq!(app.consumer_stats.dead_lettered.load(Ordering::SeqCst), 1);
    assert_eq!(app.stock("123").await, 8);
    assert_eq!(app.processed_events().await, 2);
    let dead = eventually(WAIT, "the oversize message dead-lettered", || async {
        app.broker.take(DEAD_QUEUE).await.unwrap()
    })
    .await;
    assert_eq!(dead.data.len(), padded.len());
    assert_eq!(
        dead.properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string()),
        Some(oversize.event_id.to_string())
    );
}
