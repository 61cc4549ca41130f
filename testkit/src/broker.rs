//! A RabbitMQ vhost per test (through the management API) and a small AMQP
//! client to publish and inspect messages from a test.

use std::time::Duration;

use anyhow::Context as _;
use contracts::topology::{Needs, SERVICES, user_of};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use messaging::amqp::Topology;
pub use messaging::amqp::{ManagementApi, QueueTotals};

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
fn management_api_url() -> String {
    std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into())
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The tests' broker's management API: `TEST_RABBITMQ_API`, logged in
/// with `TEST_AMQP_URL`'s account.
pub fn management_api() -> ManagementApi {
    ManagementApi::new(&management_api_url(), &amqp_base())
}

/// A vhost created for one test and deleted (with its queues) with this guard.
pub struct TestVhost {
    name: String,
    amqp_url: String,
    api: ManagementApi,
}

impl TestVhost {
    /// A vhost with the system's topology declared in it, as the `topology`
    /// command declares it before the services start, and each service's
    /// own user given its permissions there ([`Self::amqp_url_as`]).
    pub fn create() -> anyhow::Result<Self> {
        Self::with_delivery_limit(Topology::default().delivery_limit)
    }

    /// Like [`Self::create`], with work queues that dead-letter a message
    /// after `delivery_limit` redeliveries.
    pub fn with_delivery_limit(delivery_limit: u16) -> anyhow::Result<Self> {
        let vhost = Self::empty()?;
        let url = vhost.amqp_url.clone();
        // Called from sync and async tests alike: on a thread of its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let connection =
                        Connection::connect(&url, ConnectionProperties::default()).await?;
                    Topology { delivery_limit }.declare(&connection).await?;
                    connection.close(200, "topology declared".into()).await?;
                    anyhow::Ok(())
                })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("declaring the topology panicked"))?
        .context("declaring the topology in the test vhost")?;
        for service in SERVICES {
            let user = user_of(service);
            // Created once and kept (users belong to the whole broker);
            // never reset: against compose's broker that would change the
            // password its services log in with.
            if vhost
                .api
                .json("GET", &format!("/users/{user}"), None)
                .is_err()
            {
                vhost
                    .api
                    .put_user(&user, &crate::service_password(service))?;
            }
            vhost
                .api
                .set_permissions(&vhost.name, &user, &Needs::of(service).permissions())?;
        }
        Ok(vhost)
    }

    /// A vhost with nothing declared in it, where the tests' account may do
    /// everything.
    pub fn empty() -> anyhow::Result<Self> {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let api = management_api();
        api.call("PUT", &format!("/vhosts/{name}"), None)?;
        let vhost = Self {
            amqp_url: format!("{}/{name}", amqp_base()),
            name,
            api,
        };
        vhost.api.call(
            "PUT",
            &format!("/permissions/{}/{}", vhost.name, vhost.api.user()),
            Some(r#"{"configure":".*","write":".*","read":".*"}"#),
        )?;
        Ok(vhost)
    }

    /// This vhost as `service`'s own user reaches it, with only that
    /// service's permissions.
    pub fn amqp_url_as(&self, service: &str) -> String {
        let mut url = crate::url_of(&self.amqp_url);
        url.set_username(&user_of(service))
            .expect("a URL with a host");
        url.set_password(Some(&crate::service_password(service)))
            .expect("a URL with a host");
        url.to_string()
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
