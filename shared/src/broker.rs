//! The broker as the services see it: messages come in and are settled,
//! events go out and are confirmed. RabbitMQ implements it in `amqp`; tests use
//! [`memory::InMemoryBroker`].

use futures_util::future::BoxFuture;

/// What happens to a delivery once its handling is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The work is committed: remove the message.
    Ack,
    /// A transient failure: put the message back to be delivered again.
    Retry,
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
pub struct IncomingMessage {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    /// How many times the broker delivered this message before (0 on the first delivery).
    pub delivery_count: u32,
    settler: Box<dyn Settler>,
}

impl IncomingMessage {
    pub fn new(
        body: Vec<u8>,
        message_id: Option<String>,
        delivery_count: u32,
        settler: Box<dyn Settler>,
    ) -> Self {
        Self {
            body,
            message_id,
            delivery_count,
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
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An event ready to publish: persistent, JSON, identified by `message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub exchange: String,
    pub message_id: String,
    pub body: Vec<u8>,
}

/// Publishes with publisher confirms: `Ok` means the broker has taken
/// responsibility for the message.
pub trait Publisher: Send + Sync + 'static {
    fn publish(&self, message: OutgoingMessage) -> BoxFuture<'static, Result<(), BrokerError>>;
}

pub mod memory {
    //! An in-memory broker that records what was published and how each
    //! delivery was settled, for testing actors without RabbitMQ.

    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A delivery's message id and how it was settled.
    pub type Settled = (Option<String>, Settlement);

    #[derive(Clone, Default)]
    pub struct InMemoryBroker {
        published: Arc<Mutex<Vec<OutgoingMessage>>>,
        settlements: Arc<Mutex<Vec<Settled>>>,
        refuse_publishes: Arc<AtomicBool>,
    }

    impl InMemoryBroker {
        pub fn new() -> Self {
            Self::default()
        }

        /// A delivery whose settlement this broker records.
        pub fn delivery(
            &self,
            body: impl Into<Vec<u8>>,
            message_id: Option<&str>,
        ) -> IncomingMessage {
            IncomingMessage::new(
                body.into(),
                message_id.map(str::to_string),
                0,
                Box::new(RecordingSettler {
                    message_id: message_id.map(str::to_string),
                    settlements: self.settlements.clone(),
                }),
            )
        }

        pub fn published(&self) -> Vec<OutgoingMessage> {
            self.published.lock().unwrap().clone()
        }

        pub fn settlements(&self) -> Vec<Settled> {
            self.settlements.lock().unwrap().clone()
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

    impl Publisher for InMemoryBroker {
        fn publish(&self, message: OutgoingMessage) -> BoxFuture<'static, Result<(), BrokerError>> {
            let result = if self.refuse_publishes.load(Ordering::SeqCst) {
                Err(BrokerError::Unavailable(
                    "in-memory broker refuses publishes".into(),
                ))
            } else {
                self.published.lock().unwrap().push(message);
                Ok(())
            };
            Box::pin(async move { result })
        }
    }

    struct RecordingSettler {
        message_id: Option<String>,
        settlements: Arc<Mutex<Vec<Settled>>>,
    }

    impl Settler for RecordingSettler {
        fn settle(
            self: Box<Self>,
            settlement: Settlement,
        ) -> BoxFuture<'static, Result<(), BrokerError>> {
            self.settlements
                .lock()
                .unwrap()
                .push((self.message_id, settlement));
            Box::pin(async { Ok(()) })
        }
    }
}
