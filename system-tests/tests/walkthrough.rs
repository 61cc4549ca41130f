//! The original README's walkthrough, through the real binaries.

use system_tests::{EMAIL_LINE, PRODUCT_QUEUE, SETTLE, STOP, System};
use testkit::wait_until;

#[test]
fn the_original_walkthrough_survives_restarts_and_a_stopped_consumer() {
    let mut system = System::start();

    // 1. "Buy" a product: curl -X POST http://localhost:5002/create_order
    let answer = system.place_order(None);
    assert_eq!(answer["message"], "Order created and message sent!");
    assert!(answer["order_id"].as_str().is_some());

    // 2. Both consumers react to the one event, with the original log lines
    //    (written by each service's log thread, a moment after the work).
    system.wait_for_stock("123", 9);
    wait_until(SETTLE, "the notification log line", || {
        system
            .notification
            .log()
            .contains(&format!("{EMAIL_LINE}123"))
            .then_some(())
    });
    wait_until(SETTLE, "the product's two log lines", || {
        let product_log = system.product.log();
        (product_log.contains("[x] PRODUCT: Received order for product: 123")
            && product_log.contains("Stock for product 123 reduced. New stock: 9"))
        .then_some(())
    });

    // 3. Stock persists across a restart of every process (SIGTERM exits 0).
    for service in system.each() {
        assert_eq!(service.terminate(STOP), Some(0), "{}", service.log());
    }
    for service in system.each() {
        service.restart();
    }
    system.wait_healthy();
    assert_eq!(system.stock("123"), 9);

    // 4. Orders placed while the product service is down are applied once it is back.
    system.add_product("789", 500);
    assert_eq!(system.product.terminate(STOP), Some(0));
    for _ in 0..100 {
        system.place_order(Some(r#"{"product_id":"789","quantity":1}"#));
    }
    wait_until(SETTLE, "100 orders queued for the product service", || {
        (system.ready_count(PRODUCT_QUEUE) == 100).then_some(())
    });
    system.product.restart();

    // Exactly 100: nothing lost, nothing applied twice, each emailed.
    let books = system.assert_settled(&[("123", 10), ("456", 50), ("789", 500)], SETTLE);
    assert_eq!((books.orders, books.confirmed), (101, 101));
    assert_eq!(system.stock("789"), 400);
    assert_eq!(system.stock("123"), 9);
    let emails = || {
        system
            .notification
            .log()
            .matches(&format!("{EMAIL_LINE}789"))
            .count()
    };
    wait_until(SETTLE, "100 email lines", || {
        (emails() >= 100).then_some(())
    });
    assert_eq!(emails(), 100);
}
