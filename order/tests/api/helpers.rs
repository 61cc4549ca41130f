use std::time::Duration;

use order::config::Settings;
use order::startup::Application;
use serde_json::Value;
use shared::telemetry::test_logger;
use testkit::{BrokerClient, TestDatabase, TestVhost};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub address: String,
    pub broker: BrokerClient,
    _vhost: TestVhost,
    _database: TestDatabase,
}

/// The order service on port 0 with its own database and vhost.
pub async fn spawn_app() -> TestApp {
    let database = TestDatabase::create().await.expect("a test database");
    let vhost = TestVhost::create().expect("a test vhost");
    let settings = Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database.url().to_string(),
        amqp_url: vhost.amqp_url().to_string(),
    };
    let app = Application::build(settings, test_logger())
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        broker: BrokerClient::connect(vhost.amqp_url())
            .await
            .expect("a broker connection"),
        _vhost: vhost,
        _database: database,
    }
}

impl TestApp {
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
