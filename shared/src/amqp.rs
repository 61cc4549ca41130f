//! RabbitMQ through lapin: topology, a publisher with confirms and a consumer
//! stream that outlives broker restarts.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::Stream;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use slog::{Logger, info, warn};
use tokio::sync::{Mutex, mpsc};

use crate::broker::{
    BrokerError, IncomingMessage, OutgoingMessage, Publisher, Settlement, Settler,
};
use crate::config::redact_url;
use crate::events::JSON_CONTENT_TYPE;
use crate::retry::until_ok;

/// Fanout exchange receiving one `OrderCreated` per accepted order.
pub const ORDER_EXCHANGE: &str = "order_exchange";
/// Fanout exchange receiving one `StockReserved` or `StockRejected` per order.
pub const STOCK_EXCHANGE: &str = "stock_exchange";

/// Events a consumer subscribes to: an exchange, and the suffix its queue
/// gets (`<service>.<suffix>`).
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub exchange: &'static str,
    pub suffix: &'static str,
}

pub const ORDER_EVENTS: Source = Source {
    exchange: ORDER_EXCHANGE,
    suffix: "order_created",
};
pub const STOCK_EVENTS: Source = Source {
    exchange: STOCK_EXCHANGE,
    suffix: "stock_events",
};
const PERSISTENT: u8 = 2;
/// How long a publish waits for the broker's confirm before giving up on
/// the connection.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// The queues of one consumer: a durable quorum queue bound to its source
/// exchange, and the service's dead-letter queue for what it cannot process.
#[derive(Debug, Clone)]
pub struct ConsumerQueues {
    service: &'static str,
    source: Source,
    delivery_limit: u16,
}

impl ConsumerQueues {
    /// `delivery_limit`: redeliveries of one message before the queue
    /// dead-letters it. It is a queue argument, fixed when the queue is first
    /// declared; change it later with a RabbitMQ policy.
    pub fn new(service: &'static str, source: Source, delivery_limit: u16) -> Self {
        Self {
            service,
            source,
            delivery_limit,
        }
    }

    pub fn work_queue(&self) -> String {
        format!("{}.{}", self.service, self.source.suffix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.service)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.service)
    }

    /// Declares the whole topology; idempotent, run on every (re)connect.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        declare_exchange(channel, self.source.exchange).await?;
        let durable_fanout = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Fanout,
                durable_fanout,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                self.dead_letter_queue().into(),
                QueueDeclareOptions::durable(),
                quorum_args(),
            )
            .await?;
        channel
            .queue_bind(
                self.dead_letter_queue().into(),
                self.dead_letter_exchange().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = quorum_args();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(self.delivery_limit.into()),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange().as_str().into()),
        );
        channel
            .queue_declare(
                self.work_queue().into(),
                QueueDeclareOptions::durable(),
                args,
            )
            .await?;
        channel
            .queue_bind(
                self.work_queue().into(),
                self.source.exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }
}

/// Quorum queues are replicated on a cluster and count deliveries, which is
/// what bounds retries of a message that keeps failing.
fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Declares a durable fanout exchange; idempotent.
pub async fn declare_exchange(channel: &Channel, name: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// lapin's own auto-recovery is left off: after `rabbitmqctl stop_app` /
/// `start_app` it reconnected but its consumers received nothing more (lapin
/// 4.12, RabbitMQ 3.10). Our reconnect loops start from a fresh connection
/// and re-declare the topology instead, which the fault suite exercises.
fn properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(name.into())
}

/// Connects, retrying with backoff until the broker answers.
pub async fn connect(url: &str, name: &str, log: &Logger) -> Connection {
    let log = log.new(slog::o!("amqp_url" => redact_url(url)));
    let connection = until_ok(&log, "connecting to RabbitMQ", || {
        Connection::connect(url, properties(name))
    })
    .await;
    info!(log, "connected to RabbitMQ");
    connection
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

/// Publishes persistent JSON messages and waits for the broker's confirm.
/// Publishes are `mandatory`: a message no queue would receive is refused
/// rather than silently dropped.
#[derive(Clone)]
pub struct AmqpPublisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    url: String,
    name: String,
    /// Declared on every new connection.
    exchanges: Vec<&'static str>,
    log: Logger,
    /// The connection is kept beside its channel: dropping it closes both.
    link: Mutex<Option<(Connection, Channel)>>,
}

impl AmqpPublisher {
    /// Connects lazily, on the first publish, and again after a connection
    /// is lost for good: a publisher never blocks its service's startup.
    pub fn new(url: &str, name: &str, exchanges: &[&'static str], log: &Logger) -> Self {
        Self {
            inner: Arc::new(PublisherInner {
                url: url.to_string(),
                name: name.to_string(),
                exchanges: exchanges.to_vec(),
                log: log.clone(),
                link: Mutex::new(None),
            }),
        }
    }
}

impl PublisherInner {
    /// The live channel, opening a new connection if the last one was lost.
    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut link = self.link.lock().await;
        if let Some((connection, channel)) = link.as_ref()
            && connection.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = Connection::connect(&self.url, properties(&self.name))
            .await
            .map_err(unavailable)?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        for exchange in &self.exchanges {
            declare_exchange(&channel, exchange)
                .await
                .map_err(unavailable)?;
        }
        info!(self.log, "publishing channel open"; "amqp_url" => redact_url(&self.url));
        *link = Some((connection, channel.clone()));
        Ok(channel)
    }

    async fn forget(&self) {
        self.link.lock().await.take();
    }
}

async fn publish_on(channel: &Channel, message: &OutgoingMessage) -> Result<(), PublishFailure> {
    let properties = BasicProperties::default()
        .with_content_type(JSON_CONTENT_TYPE.into())
        .with_message_id(message.message_id.as_str().into())
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(chrono::Utc::now().timestamp() as u64);
    let confirm = channel
        .basic_publish(
            message.exchange.as_str().into(),
            "".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &message.body,
            properties,
        )
        .await
        .map_err(PublishFailure::Lapin)?
        .await
        .map_err(PublishFailure::Lapin)?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => {
            Err(PublishFailure::Refused(BrokerError::Unavailable(format!(
                "no queue is bound to exchange {} yet ({}); start a consuming service first",
                message.exchange, returned.reply_text
            ))))
        }
        Confirmation::Nack(_) => Err(PublishFailure::Refused(BrokerError::Nacked)),
        Confirmation::NotRequested => Err(PublishFailure::Refused(BrokerError::Unavailable(
            "publisher confirms are not enabled on the channel".into(),
        ))),
    }
}

enum PublishFailure {
    Lapin(lapin::Error),
    Refused(BrokerError),
}

impl Publisher for AmqpPublisher {
    fn publish(&self, message: OutgoingMessage) -> BoxFuture<'static, Result<(), BrokerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let channel = inner.channel().await?;
            let failure =
                match tokio::time::timeout(CONFIRM_TIMEOUT, publish_on(&channel, &message)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(PublishFailure::Refused(e))) => return Err(e),
                    Ok(Err(PublishFailure::Lapin(e))) => unavailable(e),
                    Err(_) => unavailable("no publisher confirm within 10 s"),
                };
            // The connection is broken: open a new one on the next publish.
            // Whether the broker got this message is unknown, so the caller
            // publishes it again; consumers are idempotent.
            warn!(inner.log, "publishing channel lost, reconnecting on next publish"; "err" => %failure);
            inner.forget().await;
            Err(failure)
        })
    }
}

/// Deliveries from `queues`, for as long as the returned stream is alive.
///
/// A background task owns the connection: it declares the topology, sets the
/// prefetch, and when the connection is lost it reconnects (with backoff)
/// and starts again, so the stream itself never ends while it is polled.
pub fn consume(
    url: String,
    queues: ConsumerQueues,
    prefetch: u16,
    log: Logger,
) -> impl Stream<Item = IncomingMessage> + Unpin {
    let (sender, mut receiver) = mpsc::channel(usize::from(prefetch));
    tokio::spawn(async move {
        loop {
            let connection = connect(&url, &format!("{}-consumer", queues.service), &log).await;
            match consume_on(&connection, &queues, prefetch, &sender, &log).await {
                // The receiving side is gone: the service is shutting down.
                Ok(()) => return,
                Err(e) => warn!(log, "consumer lost its connection, reconnecting"; "err" => %e),
            }
            drop(connection);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

async fn consume_on(
    connection: &Connection,
    queues: &ConsumerQueues,
    prefetch: u16,
    sender: &mpsc::Sender<IncomingMessage>,
    log: &Logger,
) -> Result<(), BrokerError> {
    let channel = connection.create_channel().await.map_err(unavailable)?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(unavailable)?;
    queues.declare(&channel).await.map_err(unavailable)?;
    let tag = format!("{}-{}", queues.service, uuid::Uuid::new_v4());
    let mut consumer = channel
        .basic_consume(
            queues.work_queue().into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    info!(log, "consuming"; "queue" => queues.work_queue(), "prefetch" => prefetch);
    while let Some(delivery) = consumer.next().await {
        match delivery {
            Ok(delivery) => {
                if sender.send(incoming(delivery)).await.is_err() {
                    return Ok(());
                }
            }
            // Deliveries not yet settled go back to the queue with the
            // connection; the caller reconnects and consumes again.
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable("the broker cancelled the consumer"))
}

fn incoming(delivery: Delivery) -> IncomingMessage {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_string());
    let delivery_count = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| {
            headers
                .inner()
                .iter()
                .find(|(key, _)| key.as_str() == "x-delivery-count")
                .and_then(|(_, value)| as_u32(value))
        })
        .unwrap_or(0);
    IncomingMessage::new(
        delivery.data,
        message_id,
        delivery_count,
        Box::new(LapinSettler(delivery.acker)),
    )
}

fn as_u32(value: &AMQPValue) -> Option<u32> {
    let wide: i64 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        _ => return None,
    };
    u32::try_from(wide).ok()
}

struct LapinSettler(lapin::Acker);

impl Settler for LapinSettler {
    fn settle(
        self: Box<Self>,
        settlement: Settlement,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        Box::pin(async move {
            let acker = self.0;
            let done = match settlement {
                Settlement::Ack => acker.ack(BasicAckOptions::default()).await,
                Settlement::Retry => {
                    acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await
                }
                Settlement::DeadLetter => acker.reject(BasicRejectOptions { requeue: false }).await,
            }
            .map_err(unavailable)?;
            if done {
                Ok(())
            } else {
                Err(unavailable(
                    "the channel closed before the delivery was settled",
                ))
            }
        })
    }
}
