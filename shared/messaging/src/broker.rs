//! The broker as the services see it: deliveries come in and are settled,
//! events go out and are confirmed. RabbitMQ implements it in `amqp`; tests use
//! `memory::InMemoryBroker` (feature `test-support`).

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

/// Settles one delivery with the broker that delivered it. It is handed the
/// body back (parking publishes it again) rather than keeping a copy.
pub trait Settler: Send + 'static {
    fn settle(
        self: Box<Self>,
        settlement: Settlement,
        body: Vec<u8>,
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
    /// The broker delivered this message before: it came back after a lost
    /// connection, a requeue, or a change of its queue's leader.
    pub redelivered: bool,
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
            redelivered: delivery_count > 0,
            settler,
        }
    }

    /// Marks whether the broker delivered it before (its `redelivered`
    /// flag, which `delivery_count` does not cover: RabbitMQ 4 counts only
    /// requeues there, not returns after a lost connection).
    pub fn with_redelivered(mut self, redelivered: bool) -> Self {
        self.redelivered = redelivered;
        self
    }

    pub fn settle(self, settlement: Settlement) -> BoxFuture<'static, Result<(), BrokerError>> {
        self.settler.settle(settlement, self.body)
    }
}

impl std::fmt::Debug for IncomingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("message_id", &self.message_id)
            .field("delivery_count", &self.delivery_count)
            .field("parked", &self.parked)
            .field("redelivered", &self.redelivered)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The deliveries of one queue, and the means to stop them.
pub struct Subscription {
    /// The queue, as readiness and metrics name it.
    pub queue: String,
    pub deliveries: BoxStream<'static, IncomingMessage>,
    pub control: Box<dyn SubscriptionControl>,
    /// `true` while the broker is delivering to this subscription: not
    /// while connecting, reconnecting, paused or closed.
    pub attached: tokio::sync::watch::Receiver<bool>,
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
    /// The id of the request that caused the event: the AMQP
    /// `correlation_id`, and a `traceparent` header when it is a trace id.
    pub correlation_id: Option<String>,
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

#[cfg(any(test, feature = "test-support"))]
pub mod memory;
