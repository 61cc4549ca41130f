use std::time::Duration;

use foundation::telemetry::test_logger;
use messaging::outbox::relay::RelaySettings;
use order::config::Settings;
use order::startup::Application;
use platform::service::Service as _;
use serde_json::Value;
use testkit::{BrokerClient, TestDatabase, TestVhost};

/// The queue of stock events the service consumes.
pub const STOCK_QUEUE: &str = "order.stock_events";
pub const WAIT: Duration = Duration::from_secs(10);
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub address: String,
    /// The admin listener: `/health`, `/ready`, `/metrics`.
    pub admin_address: String,
    /// The counters of the consumer of [`STOCK_QUEUE`].
    pub consumer_stats: std::sync::Arc<messaging::consumer::ConsumerStats>,
    pub broker: BrokerClient,
    pub db: sea_orm::DatabaseConnection,
    _vhost: TestVhost,
    _database: TestDatabase,
}

/// The relay's settings in tests: quick polls, no pruning.
pub fn relay_settings() -> RelaySettings {
    RelaySettings {
        poll_interval: Duration::from_millis(100),
        ..RelaySettings::default()
    }
}

/// The order service on port 0 with its own database and vhost.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// The order service with `amqp_url` as its broker (maybe unreachable).
pub async fn spawn_app_with_broker(vhost: TestVhost, amqp_url: &str) -> TestApp {
    spawn_app_on(vhost, |settings, _| {
        settings.common.amqp_url = amqp_url.to_string()
    })
    .await
}

/// Like [`spawn_app`], with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings, &TestDatabase)) -> TestApp {
    spawn_app_on(TestVhost::create().expect("a test vhost"), adjust).await
}

async fn spawn_app_on(
    vhost: TestVhost,
    adjust: impl FnOnce(&mut Settings, &TestDatabase),
) -> TestApp {
    let database = TestDatabase::migrated().await.expect("a test database");
    let mut settings = Settings {
        common: testkit::service_settings(&database, vhost.amqp_url()),
        relay: relay_settings(),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        intake_group: order::config::DEFAULT_INTAKE_GROUP,
        intake_queue: order::config::DEFAULT_INTAKE_QUEUE,
        // Tests place orders faster than any client may: those of the
        // limit switch it on.
        order_rate_limit: platform::rate_limit::RateLimit::Off,
        trusted_proxies: platform::rate_limit::TrustedProxies::none(),
    };
    adjust(&mut settings, &database);
    let app = Application::build(settings, test_logger())
        .await
        .expect("the app builds");
    let (address, admin_address, consumer_stats) = (
        format!("http://127.0.0.1:{}", app.port()),
        format!("http://127.0.0.1:{}", app.admin_port()),
        app.consumer_stats(STOCK_QUEUE),
    );
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        admin_address,
        consumer_stats,
        broker: BrokerClient::connect(vhost.amqp_url())
            .await
            .expect("a broker connection"),
        db: database.connect().await,
        _vhost: vhost,
        _database: database,
    }
}

impl TestApp {
    /// `(status, published)` of the order's row and its outbox row.
    pub async fn stored(&self, order_id: &str) -> (String, bool) {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT o.status, x.published_at IS NOT NULL AS published \
                 FROM orders o JOIN outbox x ON x.payload::jsonb->>'order_id' = o.id::text \
                 WHERE o.id = $1::uuid",
                [order_id.into()],
            ))
            .await
            .unwrap()
            .expect("the order and its event are stored");
        (
            row.try_get("", "status").unwrap(),
            row.try_get("", "published").unwrap(),
        )
    }

    /// `POST /create_order` with an optional body and content type.
    pub async fn create_order(
        &self,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut request = awc::Client::default().post(format!("{}/create_order", self.address));
        if let Some(content_type) = content_type {
            request = request.insert_header(("content-type", content_type));
        }
        let mut response = match body {
            Some(body) => request.send_body(body.to_string()).await,
            None => request.send().await,
        }
        .expect("POST /create_order");
        let body = response
            .json::<Value>()
            .limit(1 << 20)
            .await
            .expect("a JSON body");
        (response.status().as_u16(), body)
    }
}
