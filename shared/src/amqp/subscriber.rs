//! A subscription to one queue that outlives broker restarts. It pauses
//! (the broker sends nothing more while a dependency is down) and stops in
//! two steps: cancel (the broker sends no more, what it sent is still
//! handled and acknowledged), then close.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};
use slog::{Logger, info, warn};
use tokio::sync::{mpsc, oneshot, watch};

use super::{QueueNames, Topology, connect, unavailable};
use crate::broker::{
    BrokerError, IncomingMessage, Settlement, Settler, Subscription, SubscriptionControl,
};
use crate::retry::backoff;

/// How long closing may wait for the broker before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long parking a message may wait for the broker's confirm.
const PARK_TIMEOUT: Duration = Duration::from_secs(10);
/// The header counting how often a message was parked.
const PARKED_HEADER: &str = "x-parked";
const PERSISTENT: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Consuming,
    Cancelled,
    Closed,
}

/// What the owner of the subscription asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    phase: Phase,
    paused: bool,
}

impl Wanted {
    fn consuming(&self) -> bool {
        self.phase == Phase::Consuming && !self.paused
    }
}

/// Why deliveries stopped on a channel that is still open.
enum Stopped {
    Paused,
    Cancelled,
}

/// Deliveries from `queue`, declaring `topology` on every (re)connect.
///
/// A background task owns the connection: it sets the prefetch, consumes,
/// and when the connection is lost it reconnects (with backoff) and starts
/// again, so the stream only ends once the subscription is cancelled.
pub fn subscribe(
    url: &str,
    topology: Topology,
    queue: QueueNames,
    prefetch: u16,
    log: Logger,
) -> Subscription {
    let (sender, mut receiver) = mpsc::channel(usize::from(prefetch));
    let (wanted, wanted_seen) = watch::channel(Wanted {
        phase: Phase::Consuming,
        paused: false,
    });
    let (closed_tx, closed) = oneshot::channel();
    let task = Task {
        url: url.to_string(),
        topology,
        queue,
        prefetch,
        log: log.new(slog::o!("queue" => queue.work_queue())),
    };
    tokio::spawn(async move {
        task.run(sender, wanted_seen).await;
        let _ = closed_tx.send(());
    });
    Subscription {
        deliveries: Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })),
        control: Box::new(Control { wanted, closed }),
    }
}

struct Control {
    wanted: watch::Sender<Wanted>,
    closed: oneshot::Receiver<()>,
}

impl Control {
    fn set(&self, change: impl FnOnce(&mut Wanted)) {
        self.wanted.send_if_modified(|wanted| {
            let before = *wanted;
            change(wanted);
            before != *wanted
        });
    }
}

impl SubscriptionControl for Control {
    fn pause(&self) {
        self.set(|wanted| wanted.paused = true);
    }

    fn resume(&self) {
        self.set(|wanted| wanted.paused = false);
    }

    fn cancel(&self) {
        self.set(|wanted| {
            if wanted.phase == Phase::Consuming {
                wanted.phase = Phase::Cancelled;
            }
        });
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.set(|wanted| wanted.phase = Phase::Closed);
        Box::pin(async move {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, self.closed).await;
        })
    }
}

struct Task {
    url: String,
    topology: Topology,
    queue: QueueNames,
    prefetch: u16,
    log: Logger,
}

impl Task {
    async fn run(
        &self,
        sender: mpsc::Sender<IncomingMessage>,
        mut wanted: watch::Receiver<Wanted>,
    ) {
        let name = format!("{}-consumer", self.queue.service);
        let mut attempt = 0;
        loop {
            let connection = tokio::select! {
                connection = connect(&self.url, &name, &self.log) => connection,
                _ = wait_for(&mut wanted, |w| w.phase != Phase::Consuming) => return,
            };
            match self.session(&connection, &sender, &mut wanted).await {
                Ok(()) => {
                    // Cancelled: the stream ends, and the connection stays
                    // open until the deliveries in hand are settled.
                    drop(sender);
                    wait_for(&mut wanted, |w| w.phase == Phase::Closed).await;
                    let closing = connection.close(200, "consumer closed".into());
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
                    info!(self.log, "subscription closed");
                    return;
                }
                Err(e) => {
                    warn!(self.log, "consumer lost its connection, reconnecting"; "err" => %e);
                }
            }
            drop(connection);
            if wanted.borrow().phase != Phase::Consuming {
                return;
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt.min(3), Duration::from_secs(2))).await;
        }
    }

    /// Consumes on one connection until the subscription is cancelled
    /// (`Ok`) or the connection fails; pauses and resumes on the way.
    async fn session(
        &self,
        connection: &Connection,
        sender: &mpsc::Sender<IncomingMessage>,
        wanted: &mut watch::Receiver<Wanted>,
    ) -> Result<(), BrokerError> {
        self.topology
            .declare(connection)
            .await
            .map_err(unavailable)?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        // Parking publishes on this channel.
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        loop {
            wait_for(wanted, |w| w.consuming() || w.phase != Phase::Consuming).await;
            if wanted.borrow().phase != Phase::Consuming {
                return Ok(());
            }
            let tag = format!("{}-{}", self.queue.service, uuid::Uuid::new_v4());
            let consumer = channel
                .basic_consume(
                    self.queue.work_queue().as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            info!(self.log, "consuming"; "prefetch" => self.prefetch);
            match self
                .forward(&channel, consumer, &tag, sender, wanted)
                .await?
            {
                Stopped::Cancelled => return Ok(()),
                Stopped::Paused => info!(self.log, "consumption paused"),
            }
        }
    }

    /// Forwards deliveries until the subscription is paused or cancelled
    /// and the broker has sent its last, or the connection fails.
    async fn forward(
        &self,
        channel: &Channel,
        mut consumer: Consumer,
        tag: &str,
        sender: &mpsc::Sender<IncomingMessage>,
        wanted: &mut watch::Receiver<Wanted>,
    ) -> Result<Stopped, BrokerError> {
        let mut stopping = None;
        loop {
            tokio::select! {
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let delivery = incoming(delivery, channel, &self.queue.work_queue());
                        if sender.send(delivery).await.is_err() {
                            // The consumer actor is gone: nothing will settle these.
                            return Ok(Stopped::Cancelled);
                        }
                    }
                    // Unsettled deliveries go back to the queue with the
                    // connection; the caller reconnects and consumes again.
                    Some(Err(e)) => return Err(unavailable(e)),
                    None => {
                        return stopping
                            .ok_or_else(|| unavailable("the broker cancelled the consumer"));
                    }
                },
                _ = wait_for(wanted, |w| !w.consuming()), if stopping.is_none() => {
                    stopping = Some(if wanted.borrow().phase == Phase::Consuming {
                        Stopped::Paused
                    } else {
                        Stopped::Cancelled
                    });
                    channel
                        .basic_cancel(tag.into(), BasicCancelOptions::default())
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
    }
}

/// Resolves once what is wanted satisfies `condition`.
async fn wait_for(wanted: &mut watch::Receiver<Wanted>, condition: impl Fn(&Wanted) -> bool) {
    let _ = wanted.wait_for(|w| condition(w)).await;
}

fn incoming(delivery: Delivery, channel: &Channel, queue: &str) -> IncomingMessage {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_string());
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let counts = (
        header_count(&headers, "x-delivery-count").unwrap_or(0),
        header_count(&headers, PARKED_HEADER).unwrap_or(0),
    );
    let settler = LapinSettler {
        acker: delivery.acker,
        channel: channel.clone(),
        queue: queue.into(),
        body: delivery.data.clone(),
        properties: delivery.properties,
        parked: counts.1,
    };
    IncomingMessage::new(delivery.data, message_id, counts, Box::new(settler))
}

/// A count in a header: quorum queues add `x-delivery-count` to a
/// redelivered message; parking adds `x-parked`.
fn header_count(headers: &FieldTable, name: &str) -> Option<u32> {
    let (_, value) = headers
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)?;
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

/// The properties of a parked copy: the original's, with the broker's own
/// counting headers left out (the copy starts afresh) and `x-parked` set.
fn parked_properties(original: &BasicProperties, parked: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(original) = original.headers() {
        for (key, value) in original.inner() {
            let broker_owned = key.as_str().starts_with("x-delivery-count")
                || key.as_str().starts_with("x-acquired-count")
                || key.as_str().starts_with("x-death")
                || key.as_str().starts_with("x-first-death")
                || key.as_str().starts_with("x-last-death")
                || key.as_str() == PARKED_HEADER;
            if !broker_owned {
                headers.insert(key.clone(), value.clone());
            }
        }
    }
    headers.insert(
        ShortString::from(PARKED_HEADER),
        AMQPValue::LongLongInt((parked + 1).into()),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers);
    if let Some(content_type) = original.content_type() {
        properties = properties.with_content_type(content_type.clone());
    }
    if let Some(message_id) = original.message_id() {
        properties = properties.with_message_id(message_id.clone());
    }
    if let Some(timestamp) = original.timestamp() {
        properties = properties.with_timestamp(*timestamp);
    }
    properties
}

struct LapinSettler {
    acker: lapin::Acker,
    channel: Channel,
    queue: String,
    body: Vec<u8>,
    properties: BasicProperties,
    parked: u32,
}

impl LapinSettler {
    /// Puts a fresh copy at the back of the queue, confirmed, before the
    /// original is acknowledged: a crash in between leaves two copies, which
    /// the idempotent consumer absorbs, never none.
    async fn park(&self) -> Result<(), BrokerError> {
        let confirm = async {
            self.channel
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &self.body,
                    parked_properties(&self.properties, self.parked),
                )
                .await?
                .await
        };
        match tokio::time::timeout(PARK_TIMEOUT, confirm).await {
            Ok(Ok(lapin::Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(_)) => Err(unavailable("the broker refused the parked copy")),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("no confirm for the parked copy")),
        }
    }
}

impl Settler for LapinSettler {
    fn settle(
        self: Box<Self>,
        settlement: Settlement,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        Box::pin(async move {
            let acker = &self.acker;
            let done = match settlement {
                Settlement::Ack => acker.ack(BasicAckOptions::default()).await,
                Settlement::Park => {
                    self.park().await?;
                    acker.ack(BasicAckOptions::default()).await
                }
                // `reject` rather than `nack`: from RabbitMQ 4.3 only a
                // rejected return counts toward the delivery limit.
                Settlement::Retry => acker.reject(BasicRejectOptions { requeue: true }).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut headers = FieldTable::default();
        for (key, value) in pairs {
            headers.insert((*key).into(), value.clone());
        }
        headers
    }

    fn delivery_count(headers: &FieldTable) -> Option<u32> {
        header_count(headers, "x-delivery-count")
    }

    #[test]
    fn reads_a_count_in_any_integer_width() {
        let count = |value| delivery_count(&headers(&[("x-delivery-count", value)]));
        assert_eq!(count(AMQPValue::LongLongInt(3)), Some(3));
        assert_eq!(count(AMQPValue::ShortUInt(2)), Some(2));
        assert_eq!(count(AMQPValue::LongInt(-1)), None);
        assert_eq!(count(AMQPValue::LongString("3".into())), None);
        assert_eq!(delivery_count(&FieldTable::default()), None);
    }

    #[test]
    fn a_parked_copy_keeps_its_identity_and_starts_its_count_afresh() {
        let original = BasicProperties::default()
            .with_message_id("event-1".into())
            .with_content_type("application/json".into())
            .with_headers(headers(&[
                ("x-delivery-count", AMQPValue::LongLongInt(7)),
                ("x-parked", AMQPValue::LongLongInt(2)),
                ("traceparent", AMQPValue::LongString("00-abc-01".into())),
            ]));

        let copy = parked_properties(&original, 2);

        assert_eq!(
            copy.message_id().as_ref().map(|id| id.as_str()),
            Some("event-1")
        );
        assert_eq!(copy.delivery_mode(), &Some(PERSISTENT));
        let copied = copy.headers().clone().unwrap();
        assert_eq!(header_count(&copied, "x-delivery-count"), None);
        assert_eq!(header_count(&copied, PARKED_HEADER), Some(3));
        assert!(
            copied
                .inner()
                .iter()
                .any(|(key, _)| key.as_str() == "traceparent")
        );
    }
}
