//! The original README's walkthrough, through the real binaries with the
//! environment variables docker-compose.yml gives them.

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::Value;
use testkit::{BrokerClient, ServiceProcess, TestDatabase, TestVhost, free_port, http, wait_until};

const STARTUP: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_secs(60);

struct System {
    order: ServiceProcess,
    product: ServiceProcess,
    notification: ServiceProcess,
    order_url: String,
    product_url: String,
    notification_url: String,
}

impl System {
    fn start(database: &TestDatabase, vhost: &TestVhost, log_dir: &std::path::Path) -> Self {
        let (order_port, product_port, notification_port) = (free_port(), free_port(), free_port());
        let env = |port: u16| {
            vec![
                ("AMQP_URL", vhost.amqp_url().to_string()),
                ("HTTP_ADDR", format!("127.0.0.1:{port}")),
                ("DATABASE_URL", database.url().to_string()),
            ]
        };
        let system = Self {
            product: ServiceProcess::start("product", &env(product_port), log_dir),
            notification: ServiceProcess::start("notification", &env(notification_port), log_dir),
            order: ServiceProcess::start("order", &env(order_port), log_dir),
            order_url: format!("http://127.0.0.1:{order_port}"),
            product_url: format!("http://127.0.0.1:{product_port}"),
            notification_url: format!("http://127.0.0.1:{notification_port}"),
        };
        for url in [
            &system.product_url,
            &system.notification_url,
            &system.order_url,
        ] {
            wait_healthy(url);
        }
        system
    }

    fn each(&mut self) -> [&mut ServiceProcess; 3] {
        [&mut self.order, &mut self.product, &mut self.notification]
    }

    fn stock(&self, product_id: &str) -> i64 {
        let (status, body) = http("GET", &format!("{}/products", self.product_url), None).unwrap();
        assert_eq!(status, 200, "{body}");
        let products: Value = serde_json::from_str(&body).unwrap();
        products[product_id]["stock"].as_i64().unwrap()
    }

    fn place_order(&self, body: Option<&str>) -> Value {
        let (status, answer) =
            http("POST", &format!("{}/create_order", self.order_url), body).unwrap();
        assert_eq!(status, 201, "{answer}");
        serde_json::from_str(&answer).unwrap()
    }

    fn wait_for_stock(&self, product_id: &str, expected: i64) {
        wait_until(
            SETTLE,
            &format!("stock of {product_id} to reach {expected}"),
            || (self.stock(product_id) == expected).then_some(()),
        );
    }
}

fn wait_healthy(base_url: &str) {
    wait_until(STARTUP, &format!("{base_url}/health"), || {
        matches!(
            http("GET", &format!("{base_url}/health"), None),
            Ok((200, _))
        )
        .then_some(())
    });
}

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ecommerce-system-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_original_walkthrough_survives_restarts_and_a_stopped_consumer() {
    let rt = runtime();
    let database = rt.block_on(TestDatabase::create()).unwrap();
    let vhost = TestVhost::create().unwrap();
    let logs = log_dir();
    let mut system = System::start(&database, &vhost, &logs);
    let broker = rt
        .block_on(BrokerClient::connect(vhost.amqp_url()))
        .unwrap();
    // An event published before a consumer has bound its queue reaches no
    // queue (the relay keeps it and retries): wait for both consumers.
    for queue in ["product.order_created", "notification.order_created"] {
        rt.block_on(broker.wait_for_consumer(queue, STARTUP));
    }

    // 1. "Buy" a product: curl -X POST http://localhost:5002/create_order
    let answer = system.place_order(None);
    assert_eq!(answer["message"], "Order created and message sent!");
    assert!(answer["order_id"].as_str().is_some());

    // 2. Both consumers react to the one event, with the original log lines.
    system.wait_for_stock("123", 9);
    wait_until(SETTLE, "the notification log line", || {
        system
            .notification
            .log()
            .contains("[x] NOTIFICATION: 'Sending email' for purchased product: 123")
            .then_some(())
    });
    let product_log = system.product.log();
    assert!(
        product_log.contains("[x] PRODUCT: Received order for product: 123"),
        "{product_log}"
    );
    assert!(
        product_log.contains("Stock for product 123 reduced. New stock: 9"),
        "{product_log}"
    );

    // 3. Stock persists across a restart of every process (SIGTERM exits 0).
    for service in system.each() {
        assert_eq!(
            service.terminate(Duration::from_secs(15)),
            Some(0),
            "{}",
            service.log()
        );
    }
    for service in system.each() {
        service.restart();
    }
    for url in [
        &system.product_url,
        &system.notification_url,
        &system.order_url,
    ] {
        wait_healthy(url);
    }
    assert_eq!(system.stock("123"), 9);

    // 4. Orders placed while the product service is down are applied once it is back.
    rt.block_on(async {
        let db = database.connect().await;
        db.execute_unprepared(
            "INSERT INTO products (id, name, stock) VALUES ('789', 'Cable', 500)",
        )
        .await
        .unwrap();
    });
    assert_eq!(system.product.terminate(Duration::from_secs(15)), Some(0));
    for _ in 0..100 {
        system.place_order(Some(r#"{"product_id":"789","quantity":1}"#));
    }
    assert_eq!(
        rt.block_on(broker.ready_count("product.order_created"))
            .unwrap(),
        100
    );
    system.product.restart();
    wait_healthy(&system.product_url);
    system.wait_for_stock("789", 400);
    wait_until(SETTLE, "the product queue to drain", || {
        (rt.block_on(broker.ready_count("product.order_created"))
            .unwrap()
            == 0)
            .then_some(())
    });
    // Exactly 100: nothing lost, nothing applied twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(system.stock("789"), 400);
    assert_eq!(system.stock("123"), 9);
    let emails_for_789 = || {
        system
            .notification
            .log()
            .matches("[x] NOTIFICATION: 'Sending email' for purchased product: 789")
            .count()
    };
    wait_until(SETTLE, "100 emails for product 789", || {
        (emails_for_789() >= 100).then_some(())
    });
    assert_eq!(emails_for_789(), 100);

    drop(system);
    let _ = std::fs::remove_dir_all(&logs);
}
