use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::Addr;
use contracts::events::OrderCreated;
use contracts::topology::ORDER_EXCHANGE;
use foundation::health::ServiceHealth;
use foundation::telemetry::test_logger;
use messaging::consumer::ConsumerStats;
use messaging::outbox::relay::RelaySettings;
use platform::service::Service as _;
use product::actors::stock_keeper::{GetStockCounters, StockKeeper};
use product::config::Settings;
use product::domain::stock::StockCounters;
use product::startup::Application;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use testkit::{BrokerClient, TestDatabase, TestVhost, eventually};

pub const WORK_QUEUE: &str = "product.order_created";
pub const DEAD_QUEUE: &str = "product.dead";
pub const WAIT: Duration = Duration::from_secs(15);
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub address: String,
    /// The admin listener: `/health`, `/ready`, `/metrics`.
    pub admin_address: String,
    pub health: ServiceHealth,
    /// The service's run, until it stops by itself.
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub stock_keeper: Addr<StockKeeper>,
    /// The counters of the consumer of [`WORK_QUEUE`].
    pub consumer_stats: Arc<ConsumerStats>,
    pub broker: BrokerClient,
    pub db: DatabaseConnection,
    pub database: TestDatabase,
    _vhost: TestVhost,
}

/// The product service on port 0 with its own database and vhost, consuming.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings, &TestDatabase)) -> TestApp {
    spawn_app_on(TestVhost::create().expect("a test vhost"), adjust).await
}

/// Like [`spawn_app_with`], on `vhost` (one made with a delivery limit of
/// its own, say).
pub async fn spawn_app_on(
    vhost: TestVhost,
    adjust: impl FnOnce(&mut Settings, &TestDatabase),
) -> TestApp {
    let database = TestDatabase::migrated().await.expect("a test database");
    let mut settings = Settings {
        common: testkit::service_settings(&database, vhost.amqp_url()),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        relay: RelaySettings {
            poll_interval: Duration::from_millis(100),
            ..RelaySettings::default()
        },
    };
    adjust(&mut settings, &database);
    let app = Application::build(settings, test_logger())
        .await
        .expect("the app builds");
    let (address, admin_address, health) = (
        format!("http://127.0.0.1:{}", app.port()),
        format!("http://127.0.0.1:{}", app.admin_port()),
        app.health(),
    );
    let (stock_keeper, consumer_stats) = (app.stock_keeper(), app.consumer_stats(WORK_QUEUE));
    let stopped = actix_web::rt::spawn(app.run_until_stopped());
    let test_app = TestApp {
        address,
        admin_address,
        health,
        stopped,
        stock_keeper,
        consumer_stats,
        broker: BrokerClient::connect(vhost.amqp_url())
            .await
            .expect("a broker connection"),
        db: database.connect().await,
        database,
        _vhost: vhost,
    };
    // Publishing is safe at once (the vhost has the topology); waiting for
    // the consumer lets tests count on it consuming.
    test_app.broker.wait_for_consumer(WORK_QUEUE, WAIT).await;
    test_app
}

impl TestApp {
    pub async fn get_products(&self) -> (u16, Value) {
        let mut response = awc::Client::default()
            .get(format!("{}/products", self.address))
            .send()
            .await
            .expect("GET /products");
        let body = response.json::<Value>().await.expect("a JSON body");
        (response.status().as_u16(), body)
    }

    pub async fn stock(&self, product_id: &str) -> i64 {
        let (_, products) = self.get_products().await;
        products[product_id]["stock"]
            .as_i64()
            .expect("the product has a stock")
    }

    pub async fn publish(&self, event: &OrderCreated) {
        let body = serde_json::to_vec(event).unwrap();
        self.broker
            .publish(ORDER_EXCHANGE, &body, Some(&event.event_id.to_string()))
            .await
            .expect("publishing an event");
    }

    /// Waits until the consumer has settled `count` deliveries in all.
    pub async fn wait_settled(&self, count: u64) {
        eventually(WAIT, &format!("{count} settled deliveries"), || async {
            let stats = &self.consumer_stats;
            let settled = stats.acked.load(Ordering::SeqCst)
                + stats.dead_lettered.load(Ordering::SeqCst)
                + stats.retried.load(Ordering::SeqCst);
            (settled >= count).then_some(())
        })
        .await;
    }

    pub async fn counters(&self) -> StockCounters {
        self.stock_keeper.send(GetStockCounters).await.unwrap()
    }

    pub async fn processed_events(&self) -> i64 {
        testkit::count(&self.db, "SELECT count(*) FROM processed_events").await
    }
}
