//! `LOG_FORMAT` and `LOG_LEVEL` on the real binaries.

use serde_json::Value;
use system_tests::{Options, SETTLE, System};
use testkit::{ServiceProcess, http_with, wait_until};

/// The JSON lines of `log`, each parsed.
fn lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Waits for the line whose message is `msg` in the log `read` returns.
fn line_of(read: impl Fn() -> String, msg: &str) -> Value {
    wait_until(SETTLE, &format!("the line {msg:?}"), || {
        lines(&read()).into_iter().find(|line| line["msg"] == msg)
    })
}

#[test]
fn json_logs_are_one_object_per_line_with_the_order_and_its_request_on_each() {
    // Arrange
    let system = System::start_with(Options {
        env: vec![("LOG_FORMAT", "json".to_string())],
        ..Options::default()
    });

    // Act: one order, with a request id.
    let (status, answer) = http_with(
        "POST",
        &format!("{}/create_order", system.order_url),
        None,
        &[("x-request-id", "walkthrough-1")],
    )
    .unwrap();
    assert_eq!(status, 201, "{answer}");
    let order: Value = serde_json::from_str(&answer).unwrap();
    system.wait_for_stock("123", 9);

    // Assert: every service's line about the order names the order and the
    // request, through HTTP, the outbox and both hops over RabbitMQ.
    let order_id = order["order_id"].as_str().unwrap();
    for (line, service) in [
        (line_of(|| system.order.log(), "order accepted"), "order"),
        (
            line_of(
                || system.product.log(),
                "Stock for product 123 reduced. New stock: 9",
            ),
            "product",
        ),
        (line_of(|| system.order.log(), "order confirmed"), "order"),
        (
            line_of(
                || system.notification.log(),
                "[x] NOTIFICATION: 'Sending email' for purchased product: 123",
            ),
            "notification",
        ),
    ] {
        assert_eq!(line["order_id"], order_id, "{line}");
        assert_eq!(line["request_id"], "walkthrough-1", "{line}");
        assert_eq!(line["service"], service, "{line}");
    }
    // Every line of every service is JSON.
    for log in [
        system.order.log(),
        system.product.log(),
        system.notification.log(),
    ] {
        assert!(lines(&log).iter().all(|line| line["level"].is_string()));
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
