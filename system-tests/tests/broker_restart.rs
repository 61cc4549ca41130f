//! RabbitMQ restarted in the middle of a stream of orders. The broker is
//! shared by every test, so this file is a test binary of its own: cargo runs
//! test binaries one after the other, never beside this one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use system_tests::{SETTLE, System, rabbitmqctl};
use testkit::{http, wait_until};

const PROCESSED: &str = "SELECT count(*) FROM processed_events";
const ORDERS: &str = "SELECT count(*) FROM orders";

#[test]
fn every_order_answered_201_is_applied_exactly_once_across_a_broker_restart() {
    // Arrange: a client placing orders until told to stop.
    let system = System::start();
    system.add_product("bulk", 100_000);
    let (accepted, refused, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let client = {
        let url = format!("{}/create_order", system.order_url);
        let (accepted, refused, stop) = (accepted.clone(), refused.clone(), stop.clone());
        std::thread::spawn(move || {
            let body = r#"{"product_id":"bulk","quantity":1}"#;
            while !stop.load(Ordering::SeqCst) {
                match http("POST", &url, Some(body)) {
                    Ok((201, _)) => accepted.fetch_add(1, Ordering::SeqCst),
                    _ => refused.fetch_add(1, Ordering::SeqCst),
                };
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Act: stop and start the broker while orders keep coming.
    wait_until(SETTLE, "some orders applied", || {
        (system.count(PROCESSED) >= 20).then_some(())
    });
    rabbitmqctl(&["stop_app"]);
    let accepted_before_stop = accepted.load(Ordering::SeqCst);
    wait_until(SETTLE, "orders accepted while the broker is down", || {
        (accepted.load(Ordering::SeqCst) >= accepted_before_stop + 20).then_some(())
    });
    let accepted_while_down = accepted.load(Ordering::SeqCst);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    wait_until(SETTLE, "orders accepted after the restart", || {
        (accepted.load(Ordering::SeqCst) >= accepted_while_down + 20).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let accepted = accepted.load(Ordering::SeqCst) as i64;

    // Assert: orders were accepted throughout, and each applied once.
    assert_eq!(refused.load(Ordering::SeqCst), 0, "no order refused");
    assert!(
        accepted > accepted_while_down as i64,
        "orders kept coming after the restart"
    );
    assert_eq!(system.count(ORDERS), accepted);
    let books = system.assert_settled(&[("bulk", 100_000)], SETTLE);
    assert_eq!((books.orders, books.confirmed), (accepted, accepted));
}
