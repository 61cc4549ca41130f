//! The broker as the services see it: deliveries come in and are settled,
//! events go out and are confirmed. RabbitMQ implements it in `amqp`; tests use
//! [`memory::InMemoryBroker`].

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

/// What happens to a delivery once its handling is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The work is committed: remove the message.
    Ack,
    /// The message failed for a reason of its own that may pass: put it
    /// back. Counts toward the queue's delivery limit.
    Retry,
    /// Nothing is wrong with the message, but it cannot be handled now (a
    /// dependency is down): put a fresh copy at the back of the queue (its
    /// delivery count starts again, `parked` goes up by one) and remove this
    /// one. RabbitMQ before 4.3 counts every return toward the delivery
    /// limit, so handing it back any other way would dead-letter good work
    /// during a long outage.
    Park,
    /// The message can never succeed: move it to the dead-letter queue.
    DeadLetter,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("broker refused the message (negative publisher confirm)")]
    Nacked,
}

/// Settles one delivery with the broker that delivered it.
pub trait Settler: Send + 'static {
    fn settle(
        self: Box<Self>,
        settlement: Settlement,
    ) -> BoxFuture<'static, Result<(), BrokerError>>;
}

/// A delivery as consumers see it: no broker types leak past this point.
/// Dropped without being settled, it stays unacknowledged until its
/// subscription closes, and then returns to the queue.
pub struct IncomingMessage {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    /// How many times the broker delivered this message before (0 on the first delivery).
    pub delivery_count: u32,
    /// How many times this message was parked through an outage.
    pub parked: u32,
    settler: Box<dyn Settler>,
}

impl IncomingMessage {
    pub fn new(
        body: Vec<u8>,
        message_id: Option<String>,
        (delivery_count, parked): (u32, u32),
        settler: Box<dyn Settler>,
    ) -> Self {
        Self {
            body,
            message_id,
            delivery_count,
            parked,
            settler,
        }
    }

    pub fn settle(self, settlement: Settlement) -> BoxFuture<'static, Result<(), BrokerError>> {
        self.settler.settle(settlement)
    }
}

impl std::fmt::Debug for IncomingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("message_id", &self.message_id)
            .field("delivery_count", &self.delivery_count)
            .field("parked", &self.parked)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The deliveries of one queue, and the means to stop them.
pub struct Subscription {
    pub deliveries: BoxStream<'static, IncomingMessage>,
    pub control: Box<dyn SubscriptionControl>,
}

/// Pauses a subscription, and stops it in two steps so that a stopping
/// service settles what it already holds instead of losing the
/// acknowledgements.
pub trait SubscriptionControl: Send + 'static {
    /// No new deliveries for now; those the broker already handed over
    /// still come out of the stream.
    fn pause(&self);
    /// Deliveries again after a pause.
    fn resume(&self);
    /// No new deliveries: those the broker already handed over still come
    /// out of the stream, then it ends.
    fn cancel(&self);
    /// Closes the subscription. Deliveries still unsettled go back to the queue.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// An event ready to publish: persistent, JSON, identified by `message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub exchange: String,
    pub message_id: String,
    pub body: Vec<u8>,
}

/// Publishes with publisher confirms.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `messages` together and answers, for each in order, `Ok`
    /// once the broker has taken responsibility for it.
    fn publish_all(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'static, Vec<Result<(), BrokerError>>>;
}

pub mod memory {
    //! An in-memory broker with one queue: it records what was published and
    //! how each delivery was settled, redelivers what is retried (dead-letters
    //! it past the delivery limit), and keeps unsettled deliveries until the
    //! subscription closes, like RabbitMQ. For testing actors without it.

    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::Notify;

    /// A delivery's message id and how it was settled.
    pub type Settled = (Option<String>, Settlement);

    #[derive(Clone)]
    pub struct InMemoryBroker {
        published: Arc<Mutex<Vec<OutgoingMessage>>>,
        refuse_publishes: Arc<AtomicBool>,
        queue: Arc<Queue>,
    }

    struct Queue {
        ready: Mutex<VecDeque<Message>>,
        settlements: Mutex<Vec<Settled>>,
        dead: Mutex<Vec<Message>>,
        arrived: Notify,
        delivery_limit: u32,
        paused: AtomicBool,
        cancelled: AtomicBool,
        closed: AtomicBool,
    }

    #[derive(Debug, Clone)]
    struct Message {
        body: Vec<u8>,
        message_id: Option<String>,
        delivery_count: u32,
        parked: u32,
    }

    impl Default for InMemoryBroker {
        fn default() -> Self {
            Self::with_delivery_limit(10)
        }
    }

    impl InMemoryBroker {
        pub fn new() -> Self {
            Self::default()
        }

        /// A broker whose queue dead-letters a message retried more than `limit` times.
        pub fn with_delivery_limit(limit: u32) -> Self {
            Self {
                published: Arc::default(),
                refuse_publishes: Arc::default(),
                queue: Arc::new(Queue {
                    ready: Mutex::default(),
                    settlements: Mutex::default(),
                    dead: Mutex::default(),
                    arrived: Notify::new(),
                    delivery_limit: limit,
                    paused: AtomicBool::new(false),
                    cancelled: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                }),
            }
        }

        /// Puts a message in the queue.
        pub fn enqueue(&self, body: impl Into<Vec<u8>>, message_id: Option<&str>) {
            self.queue.push(Message {
                body: body.into(),
                message_id: message_id.map(str::to_string),
                delivery_count: 0,
                parked: 0,
            });
        }

        /// The queue's deliveries, for as long as the subscription is not cancelled.
        pub fn subscribe(&self) -> Subscription {
            let queue = self.queue.clone();
            let deliveries = futures_util::stream::unfold(queue, |queue| async move {
                let notifier = queue.clone();
                loop {
                    let arrived = notifier.arrived.notified();
                    if queue.cancelled.load(Ordering::SeqCst) {
                        return None;
                    }
                    let next = if queue.paused.load(Ordering::SeqCst) {
                        None
                    } else {
                        queue.ready.lock().unwrap().pop_front()
                    };
                    if let Some(message) = next {
                        let delivery = queue.deliver(message);
                        return Some((delivery, queue));
                    }
                    arrived.await;
                }
            });
            Subscription {
                deliveries: Box::pin(deliveries),
                control: Box::new(Control(self.queue.clone())),
            }
        }

        /// A delivery whose settlement this broker records, outside the queue.
        pub fn delivery(
            &self,
            body: impl Into<Vec<u8>>,
            message_id: Option<&str>,
        ) -> IncomingMessage {
            self.queue.deliver(Message {
                body: body.into(),
                message_id: message_id.map(str::to_string),
                delivery_count: 0,
                parked: 0,
            })
        }

        pub fn published(&self) -> Vec<OutgoingMessage> {
            self.published.lock().unwrap().clone()
        }

        pub fn settlements(&self) -> Vec<Settled> {
            self.queue.settlements.lock().unwrap().clone()
        }

        /// Message ids dead-lettered, by the consumer or by the delivery limit.
        pub fn dead_lettered(&self) -> Vec<Option<String>> {
            let dead = self.queue.dead.lock().unwrap();
            dead.iter().map(|m| m.message_id.clone()).collect()
        }

        /// Messages waiting in the queue.
        pub fn ready(&self) -> usize {
            self.queue.ready.lock().unwrap().len()
        }

        /// Whether the subscription is paused.
        pub fn paused(&self) -> bool {
            self.queue.paused.load(Ordering::SeqCst)
        }

        /// Whether the subscription was closed.
        pub fn closed(&self) -> bool {
            self.queue.closed.load(Ordering::SeqCst)
        }

        /// Makes every publish fail as if the broker were down.
        pub fn refuse_publishes(&self, refuse: bool) {
            self.refuse_publishes.store(refuse, Ordering::SeqCst);
        }

        /// Waits until `count` deliveries are settled, or panics after `timeout`.
        pub async fn wait_for_settlements(&self, count: usize, timeout: Duration) -> Vec<Settled> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let settled = self.settlements();
                if settled.len() >= count {
                    return settled;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {count} deliveries settled within {timeout:?}: {settled:?}",
                    settled.len()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    impl Queue {
        fn push(&self, message: Message) {
            self.ready.lock().unwrap().push_back(message);
            self.arrived.notify_waiters();
        }

        fn deliver(self: &Arc<Self>, message: Message) -> IncomingMessage {
            IncomingMessage::new(
                message.body.clone(),
                message.message_id.clone(),
                (message.delivery_count, message.parked),
                Box::new(RecordingSettler {
                    message,
                    queue: self.clone(),
                }),
            )
        }
    }

    struct Control(Arc<Queue>);

    impl SubscriptionControl for Control {
        fn pause(&self) {
            self.0.paused.store(true, Ordering::SeqCst);
        }

        fn resume(&self) {
            self.0.paused.store(false, Ordering::SeqCst);
            self.0.arrived.notify_waiters();
        }

        fn cancel(&self) {
            self.0.cancelled.store(true, Ordering::SeqCst);
            self.0.arrived.notify_waiters();
        }

        fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
            self.cancel();
            self.0.closed.store(true, Ordering::SeqCst);
            Box::pin(async {})
        }
    }

    impl Publisher for InMemoryBroker {
        fn publish_all(
            &self,
            messages: Vec<OutgoingMessage>,
        ) -> BoxFuture<'static, Vec<Result<(), BrokerError>>> {
            let refuse = self.refuse_publishes.load(Ordering::SeqCst);
            let mut published = self.published.lock().unwrap();
            let results = messages
                .into_iter()
                .map(|message| {
                    if refuse {
                        Err(BrokerError::Unavailable(
                            "in-memory broker refuses publishes".into(),
                        ))
                    } else {
                        published.push(message);
                        Ok(())
                    }
                })
                .collect();
            Box::pin(async move { results })
        }
    }

    struct RecordingSettler {
        message: Message,
        queue: Arc<Queue>,
    }

    impl Settler for RecordingSettler {
        fn settle(
            self: Box<Self>,
            settlement: Settlement,
        ) -> BoxFuture<'static, Result<(), BrokerError>> {
            let RecordingSettler { mut message, queue } = *self;
            queue
                .settlements
                .lock()
                .unwrap()
                .push((message.message_id.clone(), settlement));
            match settlement {
                Settlement::Ack => {}
                Settlement::DeadLetter => queue.dead.lock().unwrap().push(message),
                Settlement::Park => {
                    message.delivery_count = 0;
                    message.parked += 1;
                    queue.push(message);
                }
                Settlement::Retry => {
                    message.delivery_count += 1;
                    if message.delivery_count > queue.delivery_limit {
                        queue.dead.lock().unwrap().push(message);
                    } else {
                        queue.push(message);
                    }
                }
            }
            Box::pin(async { Ok(()) })
        }
    }
}
