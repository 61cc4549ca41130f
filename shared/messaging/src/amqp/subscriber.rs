//! A subscription to one queue that outlives broker restarts. It pauses
//! (the broker sends nothing more while a dependency is down) and stops in
//! two steps: cancel (the broker sends no more, what it sent is still
//! handled and acknowledged), then close.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use slog::{Logger, error, info, warn};
use tokio::sync::{mpsc, oneshot, watch};

use super::delivery::incoming;
use contracts::topology::QueueNames;

use super::{Endpoint, SETUP_TIMEOUT, connect, is_access_refused, step, unavailable};
use crate::broker::{BrokerError, IncomingMessage, Subscription, SubscriptionControl};
use foundation::health::ServiceHealth;
use foundation::retry::backoff;

/// How long closing may wait for the broker before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Deliveries from `queue`, which the topology step declared (until it
/// exists, consuming fails and is tried again, as during an outage).
///
/// A background task owns the connection: it sets the prefetch, consumes,
/// and when the connection is lost it reconnects (with backoff) and starts
/// again, so the stream only ends once the subscription is cancelled. A
/// broker that refuses the user reading the queue (403) fails `health`:
/// waiting does not grant a permission, and the service exits saying so.
pub fn subscribe(
    broker: impl Into<Endpoint>,
    queue: QueueNames,
    prefetch: u16,
    health: ServiceHealth,
    log: Logger,
) -> Subscription {
    let (sender, mut receiver) = mpsc::channel(usize::from(prefetch));
    let (wanted, wanted_seen) = watch::channel(Wanted {
        phase: Phase::Consuming,
        paused: false,
    });
    let (closed_tx, closed) = oneshot::channel();
    let (attached_tx, attached) = watch::channel(false);
    let task = Task {
        broker: broker.into(),
        health,
        queue,
        prefetch,
        attached: attached_tx,
        log: log.new(slog::o!("queue" => queue.work_queue())),
    };
    tokio::spawn(async move {
        task.run(sender, wanted_seen).await;
        let _ = closed_tx.send(());
    });
    Subscription {
        queue: queue.work_queue(),
        deliveries: Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })),
        control: Box::new(Control { wanted, closed }),
        attached,
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
    broker: Endpoint,
    health: ServiceHealth,
    queue: QueueNames,
    prefetch: u16,
    /// Whether the broker is delivering to us, for readiness.
    attached: watch::Sender<bool>,
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
                connection = connect(&self.broker, &name, &self.log) => connection,
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
        let channel = step("opening a channel", connection.create_channel()).await?;
        step(
            "setting the prefetch",
            channel.basic_qos(self.prefetch, BasicQosOptions::default()),
        )
        .await?;
        // Parking publishes on this channel.
        step(
            "enabling publisher confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        loop {
            wait_for(wanted, |w| w.consuming() || w.phase != Phase::Consuming).await;
            if wanted.borrow().phase != Phase::Consuming {
                return Ok(());
            }
            let tag = format!("{}-{}", self.queue.service, uuid::Uuid::new_v4());
            let consuming = channel.basic_consume(
                self.queue.work_queue().as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            );
            let consumer = match tokio::time::timeout(SETUP_TIMEOUT, consuming).await {
                Ok(Err(e)) if is_access_refused(&e) => {
                    let reason = format!(
                        "the broker refuses {} reading queue {} ({e}); the `topology` command grants it",
                        self.broker.user(),
                        self.queue.work_queue()
                    );
                    error!(self.log, "cannot consume: permission missing";
                        "dependency" => "rabbitmq", "err" => &reason);
                    self.health.fail(reason.clone());
                    return Err(unavailable(reason));
                }
                Ok(consumed) => consumed.map_err(unavailable)?,
                Err(_) => {
                    return Err(unavailable(format!(
                        "starting to consume: no answer from the broker within {} s",
                        SETUP_TIMEOUT.as_secs()
                    )));
                }
            };
            info!(self.log, "consuming"; "prefetch" => self.prefetch);
            self.attached.send_replace(true);
            let stopped = self.forward(&channel, consumer, &tag, sender, wanted).await;
            self.attached.send_replace(false);
            match stopped? {
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
                        let delivery = incoming(delivery, channel, &self.queue);
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
                    step(
                        "cancelling the consumer",
                        channel.basic_cancel(tag.into(), BasicCancelOptions::default()),
                    )
                    .await?;
                }
            }
        }
    }
}

/// Resolves once what is wanted satisfies `condition`.
async fn wait_for(wanted: &mut watch::Receiver<Wanted>, condition: impl Fn(&Wanted) -> bool) {
    let _ = wanted.wait_for(|w| condition(w)).await;
}
