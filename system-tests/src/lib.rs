//! A running system for the system tests: the three real binaries with the
//! environment variables docker-compose.yml gives them, on a database and a
//! RabbitMQ vhost of the test's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testkit::{BrokerClient, ServiceProcess, TestDatabase, TestVhost, free_port, http, wait_until};

pub const STARTUP: Duration = Duration::from_secs(30);
pub const SETTLE: Duration = Duration::from_secs(90);
pub const STOP: Duration = Duration::from_secs(15);
pub const PRODUCT_QUEUE: &str = "product.order_created";
pub const NOTIFICATION_QUEUE: &str = "notification.order_created";
pub const EMAIL_LINE: &str = "[x] NOTIFICATION: 'Sending email' for purchased product: ";

pub struct System {
    pub order: ServiceProcess,
    pub product: ServiceProcess,
    pub notification: ServiceProcess,
    pub order_url: String,
    pub product_url: String,
    pub notification_url: String,
    pub broker: BrokerClient,
    pub rt: tokio::runtime::Runtime,
    // Dropped last: the processes above are killed first.
    pub vhost: TestVhost,
    pub database: TestDatabase,
    logs: PathBuf,
}

/// Where a service finds PostgreSQL, when not directly.
pub struct Overrides {
    pub product_database_url: Option<String>,
}

impl System {
    pub fn start() -> Self {
        Self::start_with(|_| Overrides {
            product_database_url: None,
        })
    }

    /// Starts the system; `overrides` sees the test database first.
    pub fn start_with(overrides: impl FnOnce(&TestDatabase) -> Overrides) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let database = rt.block_on(TestDatabase::create()).unwrap();
        let vhost = TestVhost::create().unwrap();
        let overrides = overrides(&database);
        let logs = std::env::temp_dir().join(format!("ecommerce-system-{}", uuid_like()));
        std::fs::create_dir_all(&logs).unwrap();
        let (order_port, product_port, notification_port) = (free_port(), free_port(), free_port());
        let env = |port: u16, database_url: &str| {
            vec![
                ("AMQP_URL", vhost.amqp_url().to_string()),
                ("HTTP_ADDR", format!("127.0.0.1:{port}")),
                ("DATABASE_URL", database_url.to_string()),
            ]
        };
        let product_db = overrides
            .product_database_url
            .unwrap_or_else(|| database.url().to_string());
        let broker = rt
            .block_on(BrokerClient::connect(vhost.amqp_url()))
            .unwrap();
        let system = Self {
            product: ServiceProcess::start("product", &env(product_port, &product_db), &logs),
            notification: ServiceProcess::start(
                "notification",
                &env(notification_port, database.url()),
                &logs,
            ),
            order: ServiceProcess::start("order", &env(order_port, database.url()), &logs),
            order_url: format!("http://127.0.0.1:{order_port}"),
            product_url: format!("http://127.0.0.1:{product_port}"),
            notification_url: format!("http://127.0.0.1:{notification_port}"),
            broker,
            rt,
            vhost,
            database,
            logs,
        };
        for url in [
            &system.product_url,
            &system.notification_url,
            &system.order_url,
        ] {
            wait_healthy(url);
        }
        // An event published before a consumer has bound its queue reaches
        // no queue (the relay keeps it and retries): wait for both consumers.
        for queue in [PRODUCT_QUEUE, NOTIFICATION_QUEUE] {
            system
                .rt
                .block_on(system.broker.wait_for_consumer(queue, STARTUP));
        }
        system
    }

    pub fn each(&mut self) -> [&mut ServiceProcess; 3] {
        [&mut self.order, &mut self.product, &mut self.notification]
    }

    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    /// Current stock of `product_id`, read through `GET /products`.
    pub fn stock(&self, product_id: &str) -> i64 {
        self.try_stock(product_id)
            .unwrap_or_else(|| panic!("GET /products answered no stock for {product_id}"))
    }

    /// The stock, or `None` while the product service does not answer.
    pub fn try_stock(&self, product_id: &str) -> Option<i64> {
        let (status, body) = http("GET", &format!("{}/products", self.product_url), None).ok()?;
        if status != 200 {
            return None;
        }
        let products: Value = serde_json::from_str(&body).ok()?;
        products[product_id]["stock"].as_i64()
    }

    /// Places an order and insists on `201`.
    pub fn place_order(&self, body: Option<&str>) -> Value {
        let (status, answer) =
            http("POST", &format!("{}/create_order", self.order_url), body).unwrap();
        assert_eq!(status, 201, "{answer}");
        serde_json::from_str(&answer).unwrap()
    }

    pub fn wait_for_stock(&self, product_id: &str, expected: i64) {
        wait_until(
            SETTLE,
            &format!("stock of {product_id} to reach {expected}"),
            || (self.try_stock(product_id) == Some(expected)).then_some(()),
        );
    }

    /// `count(*)`-like query against the test database.
    pub fn count(&self, sql: &str) -> i64 {
        self.rt.block_on(self.database.count(sql))
    }

    pub fn wait_for_count(&self, sql: &str, expected: i64) {
        wait_until(SETTLE, &format!("`{sql}` to reach {expected}"), || {
            (self.count(sql) >= expected).then_some(())
        });
        assert_eq!(self.count(sql), expected, "{sql}");
    }

    /// Adds a product with plenty of stock, for tests that place many orders.
    pub fn add_product(&self, id: &str, stock: i64) {
        let sql =
            format!("INSERT INTO products (id, name, stock) VALUES ('{id}', 'Test item', {stock})");
        self.rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = self.database.connect().await;
            db.execute_unprepared(&sql).await.unwrap();
        });
    }

    pub fn ready_count(&self, queue: &str) -> u32 {
        self.rt.block_on(self.broker.ready_count(queue)).unwrap()
    }

    pub fn wait_healthy(&self) {
        for url in [&self.product_url, &self.notification_url, &self.order_url] {
            wait_healthy(url);
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for service in self.each() {
            service.kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            eprintln!("service logs kept in {}", self.logs.display());
        }
    }
}

pub fn wait_healthy(base_url: &str) {
    wait_until(STARTUP, &format!("{base_url}/health"), || {
        matches!(
            http("GET", &format!("{base_url}/health"), None),
            Ok((200, _))
        )
        .then_some(())
    });
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}
