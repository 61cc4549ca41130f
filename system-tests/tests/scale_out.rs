//! Competing consumers: three product and two notification processes share
//! their queues with one order service. The totals are exact (stock, one
//! final status and two emails per order, nothing left in any queue) and
//! every replica takes part of the work.

use std::thread;

use system_tests::{
    DEMO_STOCK, EMAIL_LINE, NOTIFICATION_QUEUE, PRODUCT_QUEUE, SETTLE, STARTUP, System,
    wait_healthy,
};
use testkit::{ServiceProcess, free_port, http, wait_until};

const ORDERS: usize = 5_000;
const CLIENTS: usize = 8;
/// 1,250 orders of one each per product: the first two have enough, the
/// last two run out.
const PRODUCTS: [(&str, i64); 4] = [
    ("scale-a", 1_500),
    ("scale-b", 1_500),
    ("scale-c", 1_000),
    ("scale-d", 500),
];
const PRODUCT_LINE: &str = "[x] PRODUCT: Received order for product: ";

/// One more process of `service` on the system's database and vhost, with
/// its own ports and log; and the address of its admin listener.
fn replica(system: &System, service: &str, n: usize) -> (ServiceProcess, String) {
    let (port, admin_port) = (free_port(), free_port());
    let logs = system.log_dir().join(format!("{service}-{n}"));
    std::fs::create_dir_all(&logs).unwrap();
    let env = [
        ("AMQP_URL", system.vhost.amqp_url_as(service)),
        ("HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        ("DATABASE_URL", system.database.url_as(service)),
    ];
    let process = ServiceProcess::start(service, &env, &logs);
    (process, format!("http://127.0.0.1:{admin_port}"))
}

#[test]
fn three_product_and_two_notification_processes_share_the_work_with_exact_totals() {
    // Arrange: the system, plus two product and one notification replicas,
    // all consuming.
    let system = System::start();
    for (id, stock) in PRODUCTS {
        system.add_product(id, stock);
    }
    let replicas: Vec<(ServiceProcess, String)> = vec![
        replica(&system, "product", 2),
        replica(&system, "product", 3),
        replica(&system, "notification", 2),
    ];
    for (_, url) in &replicas {
        wait_healthy(url);
    }
    for (queue, consumers) in [
        (PRODUCT_QUEUE, 3),
        (NOTIFICATION_QUEUE, 2),
        ("notification.stock_events", 2),
    ] {
        wait_until(
            STARTUP,
            &format!("{consumers} consumers on {queue}"),
            || {
                let count = system.rt.block_on(system.broker.consumer_count(queue));
                (count.ok()? == consumers).then_some(())
            },
        );
    }

    // Act: 5,000 orders from 8 clients, round-robin over the four products.
    let order_url = format!("{}/create_order", system.order_url);
    thread::scope(|scope| {
        for client in 0..CLIENTS {
            let order_url = &order_url;
            scope.spawn(move || {
                for i in (client..ORDERS).step_by(CLIENTS) {
                    let product = PRODUCTS[i % PRODUCTS.len()].0;
                    let body = format!(r#"{{"product_id":"{product}","quantity":1}}"#);
                    let (status, answer) = http("POST", order_url, Some(&body)).unwrap();
                    assert_eq!(status, 201, "{answer}");
                }
            });
        }
    });

    // Assert: exact books (stock, statuses, emails, queues empty) ...
    let initial: Vec<(&str, i64)> = DEMO_STOCK.iter().chain(&PRODUCTS).copied().collect();
    let books = system.assert_settled(&initial, SETTLE);
    assert_eq!(books.orders, ORDERS as i64);
    assert_eq!(
        (books.confirmed, books.rejected),
        (1_250 + 1_250 + 1_000 + 500, 250 + 750)
    );
    for (id, stock) in PRODUCTS {
        let ordered = (ORDERS / PRODUCTS.len()) as i64;
        assert_eq!(system.stock(id), (stock - ordered).max(0), "{id}");
    }

    // ... and every replica did part of it.
    let product_logs = [
        system.product.log(),
        replicas[0].0.log(),
        replicas[1].0.log(),
    ];
    let notification_logs = [system.notification.log(), replicas[2].0.log()];
    let applied: Vec<usize> = product_logs
        .iter()
        .map(|log| log.matches(PRODUCT_LINE).count())
        .collect();
    let emailed: Vec<usize> = notification_logs
        .iter()
        .map(|log| log.matches(EMAIL_LINE).count())
        .collect();
    eprintln!(
        "orders per product replica {applied:?}, emails per notification replica {emailed:?}"
    );
    assert!(
        applied.iter().all(|&n| n > 0),
        "orders per product replica: {applied:?}"
    );
    assert!(
        emailed.iter().all(|&n| n > 0),
        "emails per notification replica: {emailed:?}"
    );
    assert!(applied.iter().sum::<usize>() >= ORDERS, "{applied:?}");
}
