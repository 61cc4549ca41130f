//! A RabbitMQ vhost per test (through the management API) and a small AMQP
//! client to publish and inspect messages from a test.

use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// Base AMQP URL without vhost; override with `TEST_AMQP_URL`. The default
/// account is the one `docker compose` sets up from `.env.example` (and
/// `.ci/run` on the machine's own RabbitMQ); its user must be allowed to
/// create vhosts (tag `administrator`).
pub(crate) fn amqp_base() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| {
        format!(
            "amqp://{}:{}@127.0.0.1:5672",
            crate::COMPOSE_USER,
            crate::COMPOSE_PASSWORD
        )
    })
}

/// Management API; override with `TEST_RABBITMQ_API`. Needs the
/// `rabbitmq_management` plugin (`.ci/run` enables it).
fn management_api() -> String {
    std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into())
}

/// The user and password in an AMQP URL, which the management API takes too.
fn account_of(amqp_url: &str) -> (String, String) {
    let url = crate::url_of(amqp_url);
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    (
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    )
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// RabbitMQ's management API at `base` (`http://host:15672/api`), logged in
/// with an AMQP URL's account.
#[derive(Debug, Clone)]
pub struct ManagementApi {
    base: String,
    user: String,
    authorization: String,
}

impl ManagementApi {
    pub fn new(base: &str, amqp_url: &str) -> Self {
        use base64::Engine as _;
        let (user, password) = account_of(amqp_url);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            base: base.trim_end_matches('/').to_string(),
            user,
            authorization: format!("Basic {token}"),
        }
    }

    /// The tests' broker: `TEST_RABBITMQ_API` with `TEST_AMQP_URL`'s account.
    pub fn from_env() -> Self {
        Self::new(&management_api(), &amqp_base())
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<()> {
        self.json(method, path, body).map(|_| ())
    }

    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(body.unwrap_or("").to_string())?;
        let mut response = agent().run(request).with_context(|| {
            format!(
                "RabbitMQ management API {method} {path} (is the rabbitmq_management plugin on?)"
            )
        })?;
        if !response.status().is_success() {
            bail!(
                "RabbitMQ management API {method} {path} answered {}",
                response.status()
            );
        }
        let text = response.body_mut().read_to_string()?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Messages in `queue` of `vhost`, ready and unacknowledged (the API's
    /// figures lag the queue by a few seconds). An error while the API does
    /// not know them (it leaves them out for a moment after a queue's
    /// leader moved, say): unknown is not empty.
    pub fn queue_totals(&self, vhost: &str, queue: &str) -> anyhow::Result<QueueTotals> {
        let vhost =
            percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC);
        let queue = self.json("GET", &format!("/queues/{vhost}/{queue}"), None)?;
        let count = |field: &str| {
            queue[field]
                .as_u64()
                .with_context(|| format!("the management API gives no {field} for the queue"))
        };
        Ok(QueueTotals {
            ready: count("messages_ready")?,
            unacked: count("messages_unacknowledged")?,
            acked: queue["message_stats"]["ack"].as_u64().unwrap_or(0),
        })
    }
}

/// A vhost created for one test and deleted (with its queues) with this guard.
pub struct TestVhost {
    name: String,
    amqp_url: String,
    api: ManagementApi,
}

impl TestVhost {
    pub fn create() -> anyhow::Result<Self> {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let api = ManagementApi::from_env();
        api.call("PUT", &format!("/vhosts/{name}"), None)?;
        let vhost = Self {
            amqp_url: format!("{}/{name}", amqp_base()),
            name,
            api,
        };
        vhost.api.call(
            "PUT",
            &format!("/permissions/{}/{}", vhost.name, vhost.api.user),
            Some(r#"{"configure":".*","write":".*","read":".*"}"#),
        )?;
        Ok(vhost)
    }

    pub fn amqp_url(&self) -> &str {
        &self.amqp_url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages in `queue`, ready and unacknowledged, as the management API
    /// reports them (its figures lag the queue by a few seconds).
    pub fn queue_totals(&self, queue: &str) -> anyhow::Result<QueueTotals> {
        self.api.queue_totals(&self.name, queue)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTotals {
    pub ready: u64,
    pub unacked: u64,
    /// Deliveries acknowledged since the queue was declared.
    pub acked: u64,
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        if let Err(e) = self
            .api
            .call("DELETE", &format!("/vhosts/{}", self.name), None)
        {
            eprintln!("warning: could not delete test vhost {}: {e:#}", self.name);
        }
    }
}

/// What a test needs of RabbitMQ: publish raw messages, count and read queues.
pub struct BrokerClient {
    connection: Connection,
    channel: Channel,
}

impl BrokerClient {
    pub async fn connect(amqp_url: &str) -> anyhow::Result<Self> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// Publishes a persistent message as a producer would, waiting for the confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        body: &[u8],
        message_id: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "the broker did not confirm the message");
        Ok(())
    }

    /// Messages ready in `queue` (not counting those delivered and unacked).
    /// Fails if the queue does not exist.
    pub async fn ready_count(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.inspect(queue).await?.message_count())
    }

    /// Consumers of `queue`. A service's consumer starts after its queue is
    /// bound, so one consumer means messages published now will reach it.
    pub async fn consumer_count(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.inspect(queue).await?.consumer_count())
    }

    /// Waits until `queue` has a consumer, or fails after `timeout`.
    pub async fn wait_for_consumer(&self, queue: &str, timeout: Duration) {
        crate::eventually(timeout, &format!("a consumer on {queue}"), || async {
            matches!(self.consumer_count(queue).await, Ok(n) if n > 0).then_some(())
        })
        .await
    }

    async fn inspect(&self, queue: &str) -> anyhow::Result<lapin::Queue> {
        // A passive declare of a missing queue closes its channel: use a spare one.
        let channel = self.connection.create_channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "done".into()).await;
        Ok(declared)
    }

    /// Takes one message off `queue`, if there is one.
    pub async fn take(&self, queue: &str) -> anyhow::Result<Option<lapin::message::Delivery>> {
        let message = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await?;
        Ok(message.map(|m| m.delivery))
    }

    /// A queue of this test's own bound to `exchange` (a durable fanout
    /// exchange, declared if missing), to see what is published.
    pub async fn tap(&self, exchange: &str) -> anyhow::Result<Tap> {
        self.channel
            .exchange_declare(
                exchange.into(),
                lapin::ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let queue = format!("tap-{}", uuid::Uuid::new_v4().simple());
        self.channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        self.channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let consumer = self
            .channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Tap { consumer })
    }
}

/// Messages published to an exchange since the tap was opened.
pub struct Tap {
    consumer: lapin::Consumer,
}

impl Tap {
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<lapin::message::Delivery> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .context("no message arrived on the tap")?
            .context("the tap closed")??;
        Ok(delivery)
    }
}
