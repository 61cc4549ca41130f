//! The fault suite: every accepted order is applied to stock exactly once and
//! notified exactly once, whatever fails on the way. Each test bounds its own
//! time (the waits in `system_tests`) and runs on a database and a vhost of
//! its own, so they run in parallel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use system_tests::{NOTIFICATION_QUEUE, Overrides, SETTLE, STOP, System};
use testkit::{TcpProxy, http, wait_until};

const PROCESSED: &str = "SELECT count(*) FROM processed_events";
const EMAILS: &str = "SELECT count(*) FROM sent_emails WHERE kind = 'order_received'";
const ORDERS: &str = "SELECT count(*) FROM orders";

fn order_of(product_id: &str) -> String {
    format!(r#"{{"product_id":"{product_id}","quantity":1}}"#)
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
                let (status, body) = http("POST", &url, Some(&order_of("bulk"))).unwrap();
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
    system.wait_for_count(PROCESSED, 300);
    system.wait_for_stock("bulk", 10_000 - 300);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(system.stock("bulk"), 10_000 - 300);
    assert_eq!(system.count(PROCESSED), 300);
    system.wait_for_count(EMAILS, 300);
}

#[test]
fn orders_placed_while_notification_is_stopped_are_each_emailed_once() {
    let mut system = System::start();

    assert_eq!(system.notification.terminate(STOP), Some(0));
    for _ in 0..30 {
        system.place_order(Some(&order_of("456")));
    }
    wait_until(SETTLE, "30 orders queued for notification", || {
        (system.ready_count(NOTIFICATION_QUEUE) == 30).then_some(())
    });
    system.notification.restart();

    system.wait_for_count(EMAILS, 30);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(system.count(EMAILS), 30);
    system.wait_for_stock("456", 20);
}

#[test]
fn a_cut_database_connection_delays_orders_but_loses_none() {
    // Arrange: the product service reaches PostgreSQL through a proxy.
    let upstream: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = TcpProxy::start(upstream);
    let system = System::start_with(|database| Overrides {
        product_database_url: Some(database.url_via(proxy.port())),
    });
    system.add_product("bulk", 1_000);

    // Act: cut it, place orders, wait until the consumer retried, restore.
    proxy.cut();
    for _ in 0..20 {
        system.place_order(Some(&order_of("bulk")));
    }
    wait_until(SETTLE, "the product service to retry", || {
        system
            .product
            .log()
            .contains("transient failure")
            .then_some(())
    });
    assert_eq!(system.count(PROCESSED), 0);
    proxy.restore();

    // Assert
    system.wait_for_count(PROCESSED, 20);
    system.wait_for_stock("bulk", 980);
    assert_eq!(system.count(ORDERS), 20);
    assert_eq!(
        system.ready_count("product.dead"),
        0,
        "nothing dead-lettered"
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
    system.wait_for_stock("123", 9);
    system.wait_for_count(EMAILS, 1);

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

    // Assert
    wait_until(SETTLE, "both services to see the duplicate", || {
        let product = system.product.log().contains("Order already applied");
        let notification = system.notification.log().contains("already sent");
        (product && notification).then_some(())
    });
    assert_eq!(system.stock("123"), 9);
    assert_eq!(system.count(PROCESSED), 1);
    assert_eq!(system.count(EMAILS), 1);
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
    system.place_order(Some(&order_of("456")));

    system.wait_for_stock("123", 9);
    system.wait_for_stock("456", 49);
    system.wait_for_count(EMAILS, 2);
    for dead in ["product.dead", "notification.dead"] {
        wait_until(SETTLE, &format!("two messages in {dead}"), || {
            (system.ready_count(dead) == 2).then_some(())
        });
    }
    assert!(
        system
            .product
            .log()
            .contains("dead-lettering an invalid message")
    );
}
