//! A running system for the system tests: the three real binaries with the
//! environment variables docker-compose.yml gives them, on a database and a
//! RabbitMQ vhost of the test's own; the same on a cluster of containers
//! ([`cluster`]); clients placing orders under faults ([`clients`]); and the
//! check that the books balance once every fault is healed.

pub mod clients;
pub mod cluster;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testkit::{
    BrokerClient, QueueTotals, ServiceProcess, TcpProxy, TestDatabase, TestVhost, free_port, http,
    wait_until,
};

pub const STARTUP: Duration = Duration::from_secs(30);
pub const SETTLE: Duration = Duration::from_secs(90);
pub const STOP: Duration = Duration::from_secs(15);
pub const PRODUCT_QUEUE: &str = "product.order_created";
pub const NOTIFICATION_QUEUE: &str = "notification.order_created";
pub const EMAIL_LINE: &str = "[x] NOTIFICATION: 'Sending email' for purchased product: ";
/// Every queue of the system, work and dead-letter.
pub const QUEUES: [&str; 7] = [
    "product.order_created",
    "notification.order_created",
    "order.stock_events",
    "notification.stock_events",
    "product.dead",
    "notification.dead",
    "order.dead",
];
/// Runs `rabbitmqctl` on the tests' broker (the tests that restart it use
/// `stop_app` / `start_app`, which keep the node, its vhosts and its queues):
/// the command `TEST_RABBITMQCTL` names, else the machine's own
/// `rabbitmqctl`, else the one in compose's `rabbitmq` container.
pub fn rabbitmqctl(args: &[&str]) {
    static COMMAND: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let command = COMMAND.get_or_init(|| {
        std::env::var("TEST_RABBITMQCTL").unwrap_or_else(|_| {
            // Looked up on PATH, not run: each run of rabbitmqctl starts an
            // Erlang VM.
            let path = std::env::var_os("PATH").unwrap_or_default();
            if std::env::split_paths(&path).any(|dir| dir.join("rabbitmqctl").is_file()) {
                "rabbitmqctl".into()
            } else {
                "docker compose exec -T rabbitmq rabbitmqctl".into()
            }
        })
    });
    // Straight to stderr, past the test harness's capture: this disturbs
    // every user of the broker (compose's own services too), so say so.
    let _ = writeln!(
        std::io::stderr(),
        "system-tests: `{command} {}` on the tests' broker (its other clients see it too)",
        args.join(" ")
    );
    let mut words = command.split_whitespace();
    let program = words.next().expect("TEST_RABBITMQCTL names a command");
    let status = std::process::Command::new(program)
        .args(words)
        .args(args)
        // Where docker-compose.yml is, for `docker compose exec`.
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running `{command}`: {e}"));
    assert!(status.success(), "`{command} {}` failed", args.join(" "));
}

/// A number from the environment (`CHAOS_SECONDS=600`), if set and valid.
pub fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

/// Says how to replay a seeded run when the test fails: `var=seed`.
pub struct SeedOnFailure {
    pub test: &'static str,
    pub var: &'static str,
    pub seed: u64,
}

impl SeedOnFailure {
    /// The seed in `var`, else a fresh one.
    pub fn from_env(test: &'static str, var: &'static str) -> Self {
        Self {
            test,
            var,
            seed: env_u64(var).unwrap_or_else(|| fastrand::u64(..)),
        }
    }
}

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed; replay with {}={}",
                self.test, self.var, self.seed
            );
        }
    }
}

/// The catalogue the migrations insert.
pub const DEMO_STOCK: [(&str, i64); 2] = [("123", 10), ("456", 50)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Order,
    Product,
    Notification,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Order, Service::Product, Service::Notification];

    pub fn name(self) -> &'static str {
        match self {
            Service::Order => "order",
            Service::Product => "product",
            Service::Notification => "notification",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How to start the system.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Each service reaches PostgreSQL through a proxy of its own, which a
    /// test can cut ([`System::proxy`]).
    pub proxy_databases: bool,
    /// Start only the order service; the consumers start later with
    /// [`System::start_consumers`].
    pub order_only: bool,
    /// Leave the database empty: the services wait until the test runs
    /// the migrations ([`System::migrate`]). With it, `order_only` too:
    /// the consumers cannot attach before the schema is there.
    pub unmigrated: bool,
    /// More environment for every service.
    pub env: Vec<(&'static str, String)>,
}

pub struct System {
    pub order: ServiceProcess,
    pub product: ServiceProcess,
    pub notification: ServiceProcess,
    pub order_url: String,
    pub product_url: String,
    pub notification_url: String,
    /// Each service's admin listener: `/health`, `/ready`, `/metrics`.
    pub order_admin_url: String,
    pub product_admin_url: String,
    pub notification_admin_url: String,
    pub broker: BrokerClient,
    pub rt: tokio::runtime::Runtime,
    proxies: Vec<TcpProxy>,
    // Dropped last: the processes above are killed first.
    pub vhost: TestVhost,
    pub database: TestDatabase,
    logs: PathBuf,
}

impl System {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let database = if options.unmigrated {
            assert!(options.order_only, "consumers attach only once migrated");
            rt.block_on(TestDatabase::create())
        } else {
            rt.block_on(TestDatabase::migrated())
        }
        .unwrap();
        let vhost = TestVhost::create().unwrap();
        let logs = std::env::temp_dir().join(format!("ecommerce-system-{}", uuid_like()));
        std::fs::create_dir_all(&logs).unwrap();
        let ports = Service::ALL.map(|_| free_port());
        let admin_ports = Service::ALL.map(|_| free_port());
        let mut proxies = vec![];
        let mut database_urls = vec![];
        // Each service logs in with its own account, as compose runs them:
        // the grants and permissions the setup steps give are all it has.
        for service in Service::ALL {
            let own = database.url_as(service.name());
            if options.proxy_databases {
                let (proxy, _) = database.proxied();
                database_urls.push(testkit::via_port(&own, proxy.port()));
                proxies.push(proxy);
            } else {
                database_urls.push(own);
            }
        }
        let process = |service: Service| {
            let mut env = vec![
                ("AMQP_URL", vhost.amqp_url_as(service.name())),
                ("HTTP_ADDR", format!("127.0.0.1:{}", ports[service.index()])),
                (
                    "ADMIN_ADDR",
                    format!("127.0.0.1:{}", admin_ports[service.index()]),
                ),
                ("DATABASE_URL", database_urls[service.index()].clone()),
                // The tests place orders from 127.0.0.1 far faster than a
                // client may (a test of the limit sets it in `options.env`).
                ("ORDER_RATE_LIMIT", "off".to_string()),
            ];
            env.extend(options.env.iter().cloned());
            ServiceProcess::prepare(service.name(), &env, &logs)
        };
        let url = |service: Service| format!("http://127.0.0.1:{}", ports[service.index()]);
        let admin_url =
            |service: Service| format!("http://127.0.0.1:{}", admin_ports[service.index()]);
        let broker = rt
            .block_on(BrokerClient::connect(vhost.amqp_url()))
            .unwrap();
        let mut system = Self {
            order: process(Service::Order),
            product: process(Service::Product),
            notification: process(Service::Notification),
            order_url: url(Service::Order),
            product_url: url(Service::Product),
            notification_url: url(Service::Notification),
            order_admin_url: admin_url(Service::Order),
            product_admin_url: admin_url(Service::Product),
            notification_admin_url: admin_url(Service::Notification),
            broker,
            rt,
            proxies,
            vhost,
            database,
            logs,
        };
        system.order.restart();
        wait_healthy(&system.order_admin_url);
        if !options.order_only {
            system.start_consumers();
        }
        system
    }

    /// Starts product and notification, and waits until they consume.
    pub fn start_consumers(&mut self) {
        self.product.restart();
        self.notification.restart();
        self.wait_healthy();
        for queue in [PRODUCT_QUEUE, NOTIFICATION_QUEUE] {
            self.rt
                .block_on(self.broker.wait_for_consumer(queue, STARTUP));
        }
    }

    pub fn each(&mut self) -> [&mut ServiceProcess; 3] {
        [&mut self.order, &mut self.product, &mut self.notification]
    }

    pub fn service(&mut self, service: Service) -> &mut ServiceProcess {
        match service {
            Service::Order => &mut self.order,
            Service::Product => &mut self.product,
            Service::Notification => &mut self.notification,
        }
    }

    /// The proxy between `service` and PostgreSQL (needs `proxy_databases`).
    pub fn proxy(&self, service: Service) -> &TcpProxy {
        &self.proxies[service.index()]
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

    /// Runs `migration up` on the test database; returns how it ended.
    pub fn migrate(&self) -> std::process::Output {
        testkit::migration_up(self.database.url())
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

    /// Adds a product straight to the database.
    pub fn add_product(&self, id: &str, stock: i64) {
        self.execute(&format!(
            "INSERT INTO products (id, name, stock) VALUES ('{id}', 'Test item', {stock})"
        ));
    }

    /// Runs `sql` (one or more statements) on the test database.
    pub fn execute(&self, sql: &str) {
        self.rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = self.database.connect().await;
            db.execute_unprepared(sql).await.unwrap();
        });
    }

    pub fn ready_count(&self, queue: &str) -> u32 {
        self.rt.block_on(self.broker.ready_count(queue)).unwrap()
    }

    pub fn wait_healthy(&self) {
        for url in [
            &self.product_admin_url,
            &self.notification_admin_url,
            &self.order_admin_url,
        ] {
            wait_healthy(url);
        }
    }

    /// See [`assert_settled`].
    pub fn assert_settled(&self, initial_stock: &[(&str, i64)], stall: Duration) -> Books {
        assert_settled(self, initial_stock, stall)
    }
}

impl Ledger for System {
    fn count(&self, sql: &str) -> i64 {
        System::count(self, sql)
    }

    fn queue_totals(&self, queue: &str) -> anyhow::Result<QueueTotals> {
        self.vhost.queue_totals(queue)
    }

    fn stored_orders(&self) -> Vec<(String, String)> {
        self.rt.block_on(async {
            let db = self.database.connect().await;
            let orders = stored_orders(&db).await;
            db.close().await.ok();
            orders
        })
    }
}

/// Where the books of a running system are read.
pub trait Ledger {
    /// A query whose first column is a bigint (`count(*)`, a sum).
    fn count(&self, sql: &str) -> i64;
    /// Messages in one of the system's queues.
    fn queue_totals(&self, queue: &str) -> anyhow::Result<QueueTotals>;
    /// Every order stored: its id and its customer's email.
    fn stored_orders(&self) -> Vec<(String, String)>;
}

/// Every order's id and customer email in `db`.
pub async fn stored_orders(db: &sea_orm::DatabaseConnection) -> Vec<(String, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT id::text, customer_email FROM orders",
    ))
    .await
    .expect("the orders are read")
    .into_iter()
    .map(|row| {
        (
            row.try_get_by_index::<String>(0).unwrap(),
            row.try_get_by_index::<String>(1).unwrap(),
        )
    })
    .collect()
}

/// Waits until every order is final, every event published and every
/// email sent and every queue empty — for as long as that work makes
/// progress, giving up after `stall` without any; then checks that the
/// books balance exactly, `initial_stock` being each product's stock
/// before the first order. Panics with what does not add up.
pub fn assert_settled(
    ledger: &impl Ledger,
    initial_stock: &[(&str, i64)],
    stall: Duration,
) -> Books {
    testkit::wait_while_progressing(stall, "every order final and every email sent", || {
        let orders = ledger.count("SELECT count(*) FROM orders");
        let finals = ledger.count("SELECT count(*) FROM orders WHERE status <> 'pending'");
        let published = ledger.count("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL");
        let unpublished = ledger.count("SELECT count(*) FROM outbox WHERE published_at IS NULL");
        let sent = ledger.count("SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL");
        let done = finals == orders && unpublished == 0 && sent == 2 * orders;
        ((finals + published + sent) as u64, done)
    });
    let books = Books {
        orders: ledger.count("SELECT count(*) FROM orders"),
        confirmed: ledger.count("SELECT count(*) FROM orders WHERE status = 'confirmed'"),
        rejected: ledger.count("SELECT count(*) FROM orders WHERE status = 'rejected'"),
    };
    assert_eq!(books.confirmed + books.rejected, books.orders, "{books:?}");
    assert_eq!(
        ledger.count("SELECT count(*) FROM processed_events"),
        books.orders,
        "each OrderCreated applied exactly once"
    );
    assert_eq!(
            ledger.count(
                "SELECT count(*) FROM orders o WHERE
                   (SELECT count(*) FROM sent_emails e WHERE e.order_id = o.id
                      AND e.kind = 'order_received' AND e.sent_at IS NOT NULL) <> 1
                OR (SELECT count(*) FROM sent_emails e WHERE e.order_id = o.id
                      AND e.kind = CASE o.status WHEN 'confirmed' THEN 'order_confirmed' ELSE o.reason END
                      AND e.sent_at IS NOT NULL) <> 1"
            ),
            0,
            "one 'order received' and one outcome email per order"
        );
    assert_eq!(
        ledger.count("SELECT count(*) FROM sent_emails"),
        2 * books.orders,
        "no other email"
    );
    for (product, initial) in initial_stock {
        let confirmed = ledger.count(&format!(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM orders
                 WHERE product_id = '{product}' AND status = 'confirmed'"
        ));
        let stock = ledger.count(&format!(
            "SELECT stock::bigint FROM products WHERE id = '{product}'"
        ));
        assert_eq!(
            stock,
            initial - confirmed,
            "product {product}: {initial} − {confirmed} confirmed"
        );
        assert!(stock >= 0, "product {product} oversold: {stock}");
    }
    wait_until(stall, "every queue empty, nothing unacknowledged", || {
        QUEUES
            .iter()
            .all(|queue| {
                matches!(ledger.queue_totals(queue),
                        Ok(totals) if totals.ready == 0 && totals.unacked == 0)
            })
            .then_some(())
    });
    books
}

/// How the orders ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    pub orders: i64,
    pub confirmed: i64,
    pub rejected: i64,
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

/// Waits until `GET {admin_url}/health` answers 200.
pub fn wait_healthy(admin_url: &str) {
    wait_until(STARTUP, &format!("{admin_url}/health"), || {
        matches!(
            http("GET", &format!("{admin_url}/health"), None),
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
