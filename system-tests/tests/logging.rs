//! `LOG_FORMAT` and `LOG_LEVEL` on the real binaries.

use serde_json::Value;
use system_tests::{Options, SETTLE, System};
use testkit::{ServiceProcess, wait_until};

#[test]
fn json_logs_are_one_object_per_line_with_the_order_on_each() {
    // Arrange
    let system = System::start_with(Options {
        env: vec![("LOG_FORMAT", "json".to_string())],
        ..Options::default()
    });

    // Act
    let order = system.place_order(None);
    system.wait_for_stock("123", 9);

    // Assert: every line of every service parses, and the original's line
    // carries the order id as a key.
    let order_id = order["order_id"].as_str().unwrap();
    let product_lines = wait_until(SETTLE, "the stock line in the product log", || {
        let lines: Vec<Value> = system
            .product
            .log()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        lines
            .iter()
            .any(|line| line["msg"] == "Stock for product 123 reduced. New stock: 9")
            .then_some(lines)
    });
    let stock_line = product_lines
        .iter()
        .find(|line| line["msg"] == "Stock for product 123 reduced. New stock: 9")
        .unwrap();
    assert_eq!(stock_line["order_id"], order_id);
    assert_eq!(stock_line["level"], "INFO");
    assert_eq!(stock_line["service"], "product");
    for log in [system.order.log(), system.notification.log()] {
        for line in log.lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }
}

#[test]
fn a_bad_log_setting_stops_the_service_with_a_clear_line_and_exit_code_2() {
    let logs = std::env::temp_dir().join(format!("ecommerce-logging-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let mut product = ServiceProcess::start("product", &[("LOG_LEVEL", "loud".into())], &logs);

    let code = wait_until(SETTLE, "product to exit", || product.reap());

    assert_eq!(code, 2);
    assert!(
        product
            .log()
            .contains("configuration error: invalid LOG_LEVEL \"loud\""),
        "{}",
        product.log()
    );
    let _ = std::fs::remove_dir_all(&logs);
}
