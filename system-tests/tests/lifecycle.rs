//! The order lifecycle through the real binaries: with stock 10 and 50
//! simultaneous orders of 1, exactly 10 are confirmed, 40 rejected, and the
//! stock ends at 0.

use std::collections::HashMap;

use serde_json::Value;
use system_tests::{SETTLE, System};
use testkit::{http, wait_until};

#[test]
fn fifty_simultaneous_orders_for_ten_laptops_confirm_exactly_ten() {
    // Arrange: product 123 has 10 in stock.
    let system = System::start();
    let create = format!("{}/create_order", system.order_url);

    // Act: 50 clients order one Laptop each, at the same time.
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let url = create.clone();
            std::thread::spawn(move || {
                let (status, body) = http("POST", &url, None).unwrap();
                assert_eq!(status, 201, "{body}");
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["status"], "pending");
                body["order_id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let order_ids: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    // Assert: every order reaches a final status...
    let order = |id: &str| -> Value {
        let (status, body) =
            http("GET", &format!("{}/orders/{id}", system.order_url), None).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let finals: Vec<Value> = order_ids
        .iter()
        .map(|id| {
            wait_until(SETTLE, &format!("order {id} to be decided"), || {
                let order = order(id);
                (order["status"] != "pending").then_some(order)
            })
        })
        .collect();
    // ...and the books balance.
    let mut by_status: HashMap<String, usize> = HashMap::new();
    for order in &finals {
        *by_status
            .entry(order["status"].as_str().unwrap().to_string())
            .or_default() += 1;
        match order["status"].as_str().unwrap() {
            "confirmed" => assert!(order.get("reason").is_none(), "{order}"),
            "rejected" => assert_eq!(order["reason"], "out_of_stock", "{order}"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(by_status.get("confirmed"), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get("rejected"), Some(&40), "{by_status:?}");
    assert_eq!(system.stock("123"), 0);
    // The customer hears of each outcome: 50 received, 10 confirmed, 40 sorry.
    for (kind, expected) in [
        ("order_received", 50),
        ("order_confirmed", 10),
        ("out_of_stock", 40),
    ] {
        system.wait_for_count(
            &format!("SELECT count(*) FROM sent_emails WHERE kind = '{kind}'"),
            expected,
        );
    }
}
