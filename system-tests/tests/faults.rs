//! The fault suite: every order answered `201` reaches a final status, is
//! applied to stock exactly once and gets exactly one "order received" and
//! one outcome email, whatever fails on the way. Each test bounds its own
//! time and runs on a database and a vhost of its own, so they run in
//! parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use system_tests::{
    DEMO_STOCK, NOTIFICATION_QUEUE, Options, PRODUCT_QUEUE, SETTLE, STOP, Service, System,
};
use testkit::{http, wait_until};

const PROCESSED: &str = "SELECT count(*) FROM processed_events";

fn order_of(product_id: &str, quantity: u32) -> String {
    format!(r#"{{"product_id":"{product_id}","quantity":{quantity}}}"#)
}

/// Places orders one after another until `stop`, `pause` apart; counts
/// those answered `201`.
fn keep_ordering(
    system: &System,
    product_id: &str,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<()>, Arc<AtomicUsize>) {
    let placed = Arc::new(AtomicUsize::new(0));
    let (url, body) = (
        format!("{}/create_order", system.order_url),
        order_of(product_id, 1),
    );
    let counter = placed.clone();
    let client = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let (status, answer) = http("POST", &url, Some(&body)).unwrap();
            assert_eq!(status, 201, "{answer}");
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(pause);
        }
    });
    (client, placed)
}

#[test]
fn product_killed_mid_stream_applies_every_order_exactly_once() {
    // Arrange: a client placing 300 orders, one after the other.
    let mut system = System::start();
    system.add_product("bulk", 10_000);
    let placed = Arc::new(AtomicUsize::new(0));
    let client = {
        let (url, placed) = (format!("{}/create_order", system.order_url), placed.clone());
        std::thread::spawn(move || {
            for _ in 0..300 {
                let (status, body) = http("POST", &url, Some(&order_of("bulk", 1))).unwrap();
                assert_eq!(status, 201, "{body}");
                placed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    // Act: SIGKILL the product service in the middle of the stream.
    wait_until(SETTLE, "some orders applied", || {
        (system.count(PROCESSED) >= 20).then_some(())
    });
    system.product.kill();
    let placed_at_kill = placed.load(Ordering::SeqCst);
    client.join().unwrap();
    system.product.restart();

    // Assert
    assert!(
        placed_at_kill < 300,
        "the kill came mid-stream ({placed_at_kill} placed)"
    );
    let books = system.assert_settled(&[("bulk", 10_000)], SETTLE);
    assert_eq!((books.orders, books.confirmed), (300, 300));
}

#[test]
fn orders_placed_while_notification_is_stopped_are_each_emailed_once() {
    let mut system = System::start();

    assert_eq!(system.notification.terminate(STOP), Some(0));
    for _ in 0..30 {
        system.place_order(Some(&order_of("456", 1)));
    }
    wait_until(SETTLE, "30 orders queued for notification", || {
        (system.ready_count(NOTIFICATION_QUEUE) == 30).then_some(())
    });
    system.notification.restart();

    let books = system.assert_settled(&DEMO_STOCK, SETTLE);
    assert_eq!((books.orders, books.confirmed), (30, 30));
}

#[test]
fn a_cut_database_connection_delays_orders_but_loses_none() {
    // Arrange: the product service reaches PostgreSQL through a proxy.
    let system = System::start_with(Options {
        proxy_databases: true,
        ..Options::default()
    });
    system.add_product("bulk", 1_000);

    // Act: cut it, place orders, wait until all of them reached the
    // product's queue, restore.
    system.proxy(Service::Product).cut();
    for _ in 0..20 {
        system.place_order(Some(&order_of("bulk", 1)));
    }
    wait_until(SETTLE, "every event published", || {
        (system.count(
            "SELECT count(*) FROM outbox WHERE source = 'order' AND published_at IS NOT NULL",
        ) == 20)
            .then_some(())
    });
    assert_eq!(system.count(PROCESSED), 0);
    system.proxy(Service::Product).restore();

    // Assert
    let books = system.assert_settled(&[("bulk", 1_000)], SETTLE);
    assert_eq!((books.orders, books.confirmed), (20, 20));
}

#[test]
fn a_database_that_stops_answering_delays_orders_but_loses_none() {
    // Arrange: product and notification reach PostgreSQL through proxies.
    let system = System::start_with(Options {
        proxy_databases: true,
        ..Options::default()
    });
    system.add_product("bulk", 1_000);
    let stop = Arc::new(AtomicBool::new(false));
    let (client, _) = keep_ordering(&system, "bulk", Duration::from_millis(200), stop.clone());
    wait_until(SETTLE, "some orders applied", || {
        (system.count(PROCESSED) >= 5).then_some(())
    });

    // Act: the network swallows everything between the consumers and
    // PostgreSQL for 40 s: no error, no answer, until the client's own
    // timeouts give up.
    system.proxy(Service::Product).hold();
    system.proxy(Service::Notification).hold();
    std::thread::sleep(Duration::from_secs(40));
    system.proxy(Service::Product).restore();
    system.proxy(Service::Notification).restore();
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();

    // Assert
    let books = system.assert_settled(&[("bulk", 1_000)], SETTLE);
    assert_eq!(books.orders, books.confirmed);
}

#[test]
fn a_long_database_outage_dead_letters_nothing_and_every_order_ends_final() {
    // Arrange: product and notification reach PostgreSQL through proxies;
    // a delivery limit of 2 would dead-letter any message returned twice.
    let mut system = System::start_with(Options {
        proxy_databases: true,
        env: vec![("AMQP_DELIVERY_LIMIT", "2".into())],
        ..Options::default()
    });
    system.add_product("bulk", 100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let (client, placed) = keep_ordering(&system, "bulk", Duration::from_millis(400), stop.clone());

    // Act: both consumers lose the database for 90 s while orders keep
    // coming; the product service is also killed once in the middle.
    wait_until(SETTLE, "some orders applied", || {
        (system.count(PROCESSED) >= 5).then_some(())
    });
    let cut_at = Instant::now();
    system.proxy(Service::Product).cut();
    system.proxy(Service::Notification).cut();
    std::thread::sleep(Duration::from_secs(45));
    system.product.kill();
    system.product.restart();
    std::thread::sleep(Duration::from_secs(90).saturating_sub(cut_at.elapsed()));
    let placed_during_cut = placed.load(Ordering::SeqCst);
    system.proxy(Service::Product).restore();
    system.proxy(Service::Notification).restore();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let placed = placed.load(Ordering::SeqCst) as i64;

    // Assert
    assert!(
        placed_during_cut > 150,
        "orders kept coming ({placed_during_cut})"
    );
    let books = system.assert_settled(&[("bulk", 100_000)], SETTLE);
    assert_eq!((books.orders, books.confirmed), (placed, placed));
}

#[test]
fn orders_placed_before_any_consumer_ever_started_are_applied_once_they_start() {
    // Arrange: a fresh broker and database, and only the order service.
    let mut system = System::start_with(Options {
        order_only: true,
        ..Options::default()
    });

    // Act: orders of every outcome, then the consumers' first start.
    for body in [
        order_of("123", 4),
        order_of("123", 4),
        order_of("123", 4), // only 10 Laptops: this one is rejected
        order_of("456", 50),
        order_of("nope", 1),
    ] {
        system.place_order(Some(&body));
    }
    system.start_consumers();

    // Assert
    let books = system.assert_settled(&DEMO_STOCK, SETTLE);
    assert_eq!((books.orders, books.confirmed, books.rejected), (5, 3, 2));
    assert_eq!(
        system.count("SELECT count(*) FROM orders WHERE reason = 'unknown_product'"),
        1
    );
}

#[test]
fn the_same_event_delivered_twice_changes_stock_once_and_sends_one_email() {
    // Arrange: capture the event as it was published.
    let system = System::start();
    let mut tap = system
        .rt
        .block_on(system.broker.tap("order_exchange"))
        .unwrap();
    system.place_order(None);
    let captured = system.rt.block_on(tap.next(SETTLE)).unwrap();
    system.assert_settled(&DEMO_STOCK, SETTLE);

    // Act: republish it, byte for byte, with its message id.
    let message_id = captured
        .properties
        .message_id()
        .as_ref()
        .unwrap()
        .to_string();
    system
        .rt
        .block_on(
            system
                .broker
                .publish("order_exchange", &captured.data, Some(&message_id)),
        )
        .unwrap();

    // Assert: both services took the duplicate and acknowledged it, and
    // the books did not change.
    for queue in [PRODUCT_QUEUE, NOTIFICATION_QUEUE] {
        wait_until(
            SETTLE,
            &format!("{queue} to acknowledge both copies"),
            || {
                let totals = system.vhost.queue_totals(queue).ok()?;
                (totals.acked == 2).then_some(())
            },
        );
    }
    let books = system.assert_settled(&DEMO_STOCK, SETTLE);
    assert_eq!((books.orders, books.confirmed), (1, 1));
    assert_eq!(system.stock("123"), 9);
}

#[test]
fn malformed_messages_are_dead_lettered_and_valid_orders_around_them_processed() {
    let system = System::start();
    let publish = |body: &[u8]| {
        system
            .rt
            .block_on(system.broker.publish("order_exchange", body, None))
            .unwrap()
    };

    publish(b"\x00\x01 not json");
    system.place_order(None);
    publish(br#"{"event_id":"not-a-uuid","product_id":"123","quantity":1}"#);
    system.place_order(Some(&order_of("456", 1)));

    for dead in ["product.dead", "notification.dead"] {
        wait_until(SETTLE, &format!("two messages in {dead}"), || {
            (system.ready_count(dead) == 2).then_some(())
        });
    }
    system.wait_for_stock("123", 9);
    system.wait_for_stock("456", 49);
    system.wait_for_count(
        "SELECT count(*) FROM sent_emails WHERE kind = 'order_received' AND sent_at IS NOT NULL",
        2,
    );
    system.wait_for_count("SELECT count(*) FROM orders WHERE status = 'confirmed'", 2);
}

#[test]
fn a_service_told_to_stop_while_it_waits_for_its_database_exits_cleanly() {
    // Arrange: nothing listens where the service looks for PostgreSQL.
    let logs = std::env::temp_dir().join(format!("ecommerce-stop-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:{}/nowhere",
                testkit::free_port()
            ),
        ),
        ("HTTP_ADDR", format!("127.0.0.1:{}", testkit::free_port())),
    ];
    let mut product = testkit::ServiceProcess::start("product", &env, &logs);
    wait_until(SETTLE, "the service to wait for its database", || {
        product
            .log()
            .contains("connecting to PostgreSQL failed")
            .then_some(())
    });

    // Act
    let code = product.terminate(STOP);

    // Assert
    assert_eq!(code, Some(0), "{}", product.log());
    let _ = std::fs::remove_dir_all(&logs);
}
