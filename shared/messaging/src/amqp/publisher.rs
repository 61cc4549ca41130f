//! Publishes persistent JSON messages with publisher confirms, on one
//! long-lived connection per process.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use slog::{Logger, info, warn};
use tokio::sync::Mutex;

use super::{Endpoint, open, step, unavailable};
use crate::broker::{BrokerError, OutgoingMessage, Publisher};
use contracts::events::JSON_CONTENT_TYPE;
use foundation::config::redact_url;
use foundation::telemetry::{TRACEPARENT_HEADER, traceparent_for};

const PERSISTENT: u8 = 2;
/// How long a batch waits for the broker's confirms before giving up on
/// the connection.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes are `mandatory`: a message no queue would receive is refused
/// rather than silently dropped (with the whole topology declared first,
/// that only happens if someone deleted a queue).
#[derive(Clone)]
pub struct AmqpPublisher {
    inner: Arc<Inner>,
}

struct Inner {
    broker: Endpoint,
    name: String,
    log: Logger,
    /// The connection is kept beside its channel: dropping it closes both.
    link: Mutex<Option<(Connection, Channel)>>,
}

impl AmqpPublisher {
    /// Connects lazily, on the first publish, and again after a connection
    /// is lost: a publisher never blocks its service's startup.
    pub fn new(broker: impl Into<Endpoint>, name: &str, log: &Logger) -> Self {
        Self {
            inner: Arc::new(Inner {
                broker: broker.into(),
                name: name.to_string(),
                log: log.clone(),
                link: Mutex::new(None),
            }),
        }
    }
}

impl Inner {
    /// The live channel, opening a new connection if the last one was lost.
    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut link = self.link.lock().await;
        if let Some((connection, channel)) = link.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = open(&self.broker, &self.name).await?;
        let channel = step("opening a channel", connection.create_channel()).await?;
        step(
            "enabling publisher confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        info!(self.log, "publishing channel open"; "amqp_url" => redact_url(self.broker.url()));
        *link = Some((connection, channel.clone()));
        Ok(channel)
    }

    async fn forget(&self) {
        self.link.lock().await.take();
    }
}

enum Failure {
    /// The connection failed: whether the broker got the message is unknown.
    Link(lapin::Error),
    /// The broker answered, and refused.
    Refused(BrokerError),
}

/// The AMQP properties of `message`: JSON, persistent, its id, and the
/// request it comes from (`correlation_id`, `traceparent`).
fn properties(message: &OutgoingMessage) -> BasicProperties {
    let mut properties = BasicProperties::default()
        .with_content_type(JSON_CONTENT_TYPE.into())
        .with_message_id(message.message_id.as_str().into())
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(chrono::Utc::now().timestamp() as u64);
    if let Some(request_id) = &message.correlation_id {
        properties = properties.with_correlation_id(request_id.as_str().into());
        if let Some(traceparent) = traceparent_for(request_id) {
            let mut headers = FieldTable::default();
            headers.insert(
                TRACEPARENT_HEADER.into(),
                AMQPValue::LongString(traceparent.into()),
            );
            properties = properties.with_headers(headers);
        }
    }
    properties
}

async fn publish_on(channel: &Channel, message: &OutgoingMessage) -> Result<(), Failure> {
    let properties = properties(message);
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
        .map_err(Failure::Link)?
        .await
        .map_err(Failure::Link)?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => {
            Err(Failure::Refused(BrokerError::Unavailable(format!(
                "no queue is bound to exchange {} ({})",
                message.exchange, returned.reply_text
            ))))
        }
        Confirmation::Nack(_) => Err(Failure::Refused(BrokerError::Nacked)),
        Confirmation::NotRequested => Err(Failure::Refused(BrokerError::Unavailable(
            "publisher confirms are not enabled on the channel".into(),
        ))),
    }
}

impl Publisher for AmqpPublisher {
    fn publish_all(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'static, Vec<Result<(), BrokerError>>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            // One connection attempt per batch, not one per message.
            let channel = match inner.channel().await {
                Ok(channel) => channel,
                Err(e) => return vec![Err(e); messages.len()],
            };
            // Published back to back; the confirms are awaited together.
            let confirmed = tokio::time::timeout(
                CONFIRM_TIMEOUT,
                join_all(messages.iter().map(|m| publish_on(&channel, m))),
            )
            .await;
            let Ok(results) = confirmed else {
                warn!(
                    inner.log,
                    "no publisher confirms within 10 s, reconnecting on next publish"
                );
                inner.forget().await;
                let e = unavailable("no publisher confirm within 10 s");
                return vec![Err(e); messages.len()];
            };
            let mut link_lost = None;
            let results = results
                .into_iter()
                .map(|result| match result {
                    Ok(()) => Ok(()),
                    Err(Failure::Refused(e)) => Err(e),
                    Err(Failure::Link(e)) => {
                        let e = unavailable(e);
                        link_lost = Some(e.clone());
                        Err(e)
                    }
                })
                .collect();
            if let Some(e) = link_lost {
                // Whether the broker got these is unknown, so the caller
                // publishes them again; consumers are idempotent.
                warn!(inner.log, "publishing channel lost, reconnecting on next publish"; "err" => %e);
                inner.forget().await;
            }
            results
        })
    }
}
