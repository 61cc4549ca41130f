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
    /// The name of its queue, as its subscription gives it.
    pub const QUEUE: &'static str = "memory";

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
            queue: Self::QUEUE.to_string(),
            deliveries: Box::pin(deliveries),
            control: Box::new(Control(self.queue.clone())),
            // Nothing to connect to: attached from the start.
            attached: tokio::sync::watch::channel(true).1,
        }
    }

    /// A delivery whose settlement this broker records, outside the queue.
    pub fn delivery(&self, body: impl Into<Vec<u8>>, message_id: Option<&str>) -> IncomingMessage {
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
        _body: Vec<u8>,
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
