//! A subscription to one queue that outlives broker restarts, and stops in
//! two steps: cancel (the broker sends no more, what it sent is still
//! handled and acknowledged), then close.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, Consumer};
use slog::{Logger, info, warn};
use tokio::sync::{mpsc, oneshot, watch};

use super::{QueueNames, Topology, connect, unavailable};
use crate::broker::{
    BrokerError, IncomingMessage, Settlement, Settler, Subscription, SubscriptionControl,
};
use crate::retry::backoff;

/// How long closing may wait for the broker before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Consuming,
    Cancelled,
    Closed,
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
    let (phase, phase_seen) = watch::channel(Phase::Consuming);
    let (closed_tx, closed) = oneshot::channel();
    let task = Task {
        url: url.to_string(),
        topology,
        queue,
        prefetch,
        log,
    };
    tokio::spawn(async move {
        task.run(sender, phase_seen).await;
        let _ = closed_tx.send(());
    });
    Subscription {
        deliveries: Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })),
        control: Box::new(Control { phase, closed }),
    }
}

struct Control {
    phase: watch::Sender<Phase>,
    closed: oneshot::Receiver<()>,
}

impl SubscriptionControl for Control {
    fn cancel(&self) {
        self.phase.send_if_modified(|phase| {
            let consuming = *phase == Phase::Consuming;
            if consuming {
                *phase = Phase::Cancelled;
            }
            consuming
        });
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.phase.send_replace(Phase::Closed);
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
    async fn run(&self, sender: mpsc::Sender<IncomingMessage>, mut phase: watch::Receiver<Phase>) {
        let name = format!("{}-consumer", self.queue.service);
        let mut attempt = 0;
        loop {
            let connection = tokio::select! {
                connection = connect(&self.url, &name, &self.log) => connection,
                _ = left_consuming(&mut phase) => return,
            };
            match self.consume_on(&connection, &sender, &mut phase).await {
                Ok(()) => {
                    // Cancelled: the stream ends, and the connection stays
                    // open until the deliveries in hand are settled.
                    drop(sender);
                    let _ = phase.wait_for(|p| *p == Phase::Closed).await;
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
            if *phase.borrow() != Phase::Consuming {
                return;
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt.min(3), Duration::from_secs(2))).await;
        }
    }

    /// Forwards deliveries until the subscription is cancelled and the broker
    /// has sent its last (`Ok`), or the connection fails.
    async fn consume_on(
        &self,
        connection: &Connection,
        sender: &mpsc::Sender<IncomingMessage>,
        phase: &mut watch::Receiver<Phase>,
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
        let tag = format!("{}-{}", self.queue.service, uuid::Uuid::new_v4());
        let mut consumer: Consumer = channel
            .basic_consume(
                self.queue.work_queue().as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        info!(self.log, "consuming"; "prefetch" => self.prefetch);
        let mut cancelled = false;
        loop {
            tokio::select! {
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        if sender.send(incoming(delivery)).await.is_err() {
                            // The consumer actor is gone: nothing will settle these.
                            return Ok(());
                        }
                    }
                    // Unsettled deliveries go back to the queue with the
                    // connection; the caller reconnects and consumes again.
                    Some(Err(e)) => return Err(unavailable(e)),
                    None if cancelled => return Ok(()),
                    None => return Err(unavailable("the broker cancelled the consumer")),
                },
                _ = left_consuming(phase), if !cancelled => {
                    cancelled = true;
                    channel
                        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
    }
}

/// Resolves once the subscription is cancelled or closed.
async fn left_consuming(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Consuming).await;
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
        .and_then(delivery_count)
        .unwrap_or(0);
    IncomingMessage::new(
        delivery.data,
        message_id,
        delivery_count,
        Box::new(LapinSettler(delivery.acker)),
    )
}

/// The `x-delivery-count` header quorum queues add to a redelivered message.
fn delivery_count(headers: &FieldTable) -> Option<u32> {
    let (_, value) = headers
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == "x-delivery-count")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: AMQPValue) -> FieldTable {
        let mut headers = FieldTable::default();
        headers.insert("x-delivery-count".into(), value);
        headers
    }

    #[test]
    fn reads_the_delivery_count_in_any_integer_width() {
        assert_eq!(delivery_count(&headers(AMQPValue::LongLongInt(3))), Some(3));
        assert_eq!(delivery_count(&headers(AMQPValue::ShortUInt(2))), Some(2));
        assert_eq!(delivery_count(&headers(AMQPValue::LongInt(-1))), None);
        assert_eq!(
            delivery_count(&headers(AMQPValue::LongString("3".into()))),
            None
        );
        assert_eq!(delivery_count(&FieldTable::default()), None);
    }
}
