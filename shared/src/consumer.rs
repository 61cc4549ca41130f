//! The consumer actor shared by every consuming service: it decodes each
//! delivery into an event `E`, forwards it as a typed message `M` to a domain
//! actor and settles the delivery only once that actor has answered.
//!
//! How a failure is settled depends on whose fault it is ([`FailureKind`]):
//! a dependency's outage parks the message (a fresh copy back in the queue,
//! uncounted) and pauses the service's consumers until a probe finds the
//! dependency again ([`Gate`]); a failure of the message itself returns it
//! to the queue, whose delivery limit dead-letters it if it keeps failing; a
//! message that can never succeed is dead-lettered at once.

use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use slog::{Logger, error, info, o, warn};

use crate::broker::{IncomingMessage, Settlement, Subscription, SubscriptionControl};
use crate::events::{Event, decode};
use crate::health::ServiceHealth;
use crate::outage::{Gate, GateState};
use crate::retry::backoff;

mod classify;

pub use classify::{Classify, FailureKind};

/// A message parked this often met "the dependency is down" each time the
/// probe had found it up again: it is failing for a reason of its own.
const PARK_LIMIT: u32 = 20;
/// Longest hold before a retried message goes back to the queue.
const RETRY_HOLD_CAP: Duration = Duration::from_secs(10);

/// Counters of what the consumer did, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Deliveries received and not settled yet.
    pub in_flight: AtomicU64,
    pub acked: AtomicU64,
    pub retried: AtomicU64,
    /// Handed back through an outage.
    pub parked: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub settle_failures: AtomicU64,
}

impl ConsumerStats {
    fn count(&self, settlement: Settlement) {
        let counter = match settlement {
            Settlement::Ack => &self.acked,
            Settlement::Retry => &self.retried,
            Settlement::Park => &self.parked,
            Settlement::DeadLetter => &self.dead_lettered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A domain message answered with a result the consumer can classify.
pub trait Answered: Message<Result = Result<Self::Done, Self::Error>> + Send + 'static {
    type Done: Send + 'static;
    type Error: Classify + Display + Send + 'static;
}

impl<M, T, Er> Answered for M
where
    M: Message<Result = Result<T, Er>> + Send + 'static,
    T: Send + 'static,
    Er: Classify + Display + Send + 'static,
{
    type Done = T;
    type Error = Er;
}

/// A domain message made from an event `E`: what a consumer of `E` sends.
pub trait FromEvent<E>: Answered + From<E> {}

impl<E, M: Answered + From<E>> FromEvent<E> for M {}

/// What a consumer shares with the rest of its service.
#[derive(Clone)]
pub struct ConsumerContext {
    /// One per service: an outage pauses all its consumers.
    pub gate: Gate,
    pub health: ServiceHealth,
    pub stats: Arc<ConsumerStats>,
    pub log: Logger,
}

impl ConsumerContext {
    /// The context of a service whose consumers depend on the database `db`.
    pub fn for_database(db: &sea_orm::DatabaseConnection, log: Logger) -> Self {
        Self {
            gate: Gate::new(crate::db::probe(db), log.clone()),
            health: ServiceHealth::new(),
            stats: Arc::default(),
            log,
        }
    }
}

/// Consumes deliveries of `E` and forwards each as an `M` to `target`.
pub struct EventConsumer<E, M>
where
    M: Message + Send,
    M::Result: Send,
{
    event: PhantomData<fn() -> E>,
    target: Recipient<M>,
    context: ConsumerContext,
    control: Option<Box<dyn SubscriptionControl>>,
    stream_ended: Arc<AtomicBool>,
}

impl<E, M> EventConsumer<E, M>
where
    M: Message + Send,
    M::Result: Send,
{
    pub fn new(target: Recipient<M>, context: ConsumerContext) -> Self {
        Self {
            event: PhantomData,
            target,
            context,
            control: None,
            stream_ended: Arc::default(),
        }
    }
}

/// How long a stopping service waits for its deliveries in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Stop taking deliveries, wait up to `timeout` for those in hand to be
/// settled (the broker's acknowledgements included), then close the
/// subscription. Answers how many were still unsettled: they go back to the
/// queue.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Drain {
    pub timeout: Duration,
}

impl<E, M> Actor for EventConsumer<E, M>
where
    E: Event + Clone,
    M: FromEvent<E>,
{
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        info!(self.context.log, "consumer started");
    }
}

impl<E, M> EventConsumer<E, M>
where
    E: Event + Clone,
    M: FromEvent<E>,
{
    /// Starts the consumer on `subscription`.
    pub fn start_on(self, subscription: Subscription) -> Addr<Self> {
        Self::create(|ctx| {
            let mut consumer = self;
            consumer.control = Some(subscription.control);
            ctx.add_stream(subscription.deliveries);
            ctx.add_stream(consumer.context.gate.states());
            consumer
        })
    }
}

/// The gate pauses the subscription while a dependency is down, so no
/// delivery sits unacknowledged in this process through an outage.
impl<E, M> StreamHandler<GateState> for EventConsumer<E, M>
where
    E: Event + Clone,
    M: FromEvent<E>,
{
    fn handle(&mut self, state: GateState, _: &mut Self::Context) {
        if let Some(control) = &self.control {
            match state {
                GateState::Open => control.resume(),
                GateState::Paused | GateState::Stopped => control.pause(),
            }
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {}
}

impl<E, M> Handler<Drain> for EventConsumer<E, M>
where
    E: Event + Clone,
    M: FromEvent<E>,
{
    type Result = ResponseActFuture<Self, u64>;

    fn handle(&mut self, drain: Drain, _: &mut Self::Context) -> Self::Result {
        if let Some(control) = &self.control {
            control.cancel();
        }
        let stats = self.context.stats.clone();
        let stream_ended = self.stream_ended.clone();
        let log = self.context.log.clone();
        let deadline = Instant::now() + drain.timeout;
        info!(log, "draining: no new deliveries";
            "in_flight" => stats.in_flight.load(Ordering::SeqCst));
        Box::pin(
            async move {
                loop {
                    let in_flight = stats.in_flight.load(Ordering::SeqCst);
                    let settled_all = in_flight == 0 && stream_ended.load(Ordering::SeqCst);
                    if settled_all || Instant::now() >= deadline {
                        return in_flight;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            .into_actor(self)
            .then(|left, consumer, _| {
                let control = consumer.control.take();
                async move {
                    if let Some(control) = control {
                        control.close().await;
                    }
                    left
                }
                .into_actor(consumer)
            })
            .map(move |left, consumer, ctx| {
                info!(consumer.context.log, "drained"; "left_unsettled" => left);
                ctx.stop();
                left
            }),
        )
    }
}

impl<E, M> StreamHandler<IncomingMessage> for EventConsumer<E, M>
where
    E: Event + Clone,
    M: FromEvent<E>,
{
    fn handle(&mut self, delivery: IncomingMessage, ctx: &mut Self::Context) {
        let stats = self.context.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        let event = match decode::<E>(&delivery.body) {
            Ok(event) => event,
            Err(reason) => {
                let log = self
                    .context
                    .log
                    .new(o!("message_id" => delivery.message_id.clone()));
                error!(log, "dead-lettering an invalid message"; "reason" => %reason);
                ctx.spawn(
                    settle(delivery, Some(Settlement::DeadLetter), stats, log).into_actor(self),
                );
                return;
            }
        };
        let log = self.context.log.new(o!(
            "event_id" => event.event_id().to_string(),
            "order_id" => event.order_id().to_string(),
        ));
        let attempts = Attempts {
            target: self.target.clone(),
            context: ConsumerContext {
                log: log.clone(),
                ..self.context.clone()
            },
        };
        // Deliveries are handled concurrently, up to the prefetch; the domain
        // actor decides how much of that work it serializes.
        ctx.spawn(
            async move {
                let settlement = attempts.run(event, &delivery).await;
                settle(delivery, settlement, stats, log).await
            }
            .into_actor(self),
        );
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // Not `ctx.stop()`: deliveries in hand must still be settled.
        self.stream_ended.store(true, Ordering::SeqCst);
        info!(
            self.context.log,
            "no more deliveries, finishing those in hand"
        );
    }
}

/// Forwards one event to the domain actor until the outcome settles it.
struct Attempts<M: Message + Send>
where
    M::Result: Send,
{
    target: Recipient<M>,
    context: ConsumerContext,
}

impl<M: Answered> Attempts<M> {
    /// The settlement, or `None` to leave the delivery to the broker (the
    /// service is stopping).
    async fn run<E: Clone + Into<M>>(
        &self,
        event: E,
        delivery: &IncomingMessage,
    ) -> Option<Settlement> {
        let ConsumerContext { gate, log, .. } = &self.context;
        match gate.state() {
            GateState::Open => {}
            // Handed over just before the pause took effect.
            GateState::Paused => return Some(Settlement::Park),
            GateState::Stopped => return None,
        }
        let (kind, cause) = match self.target.send(event.into()).await {
            Ok(Ok(_)) => {
                gate.report_success();
                return Some(Settlement::Ack);
            }
            Ok(Err(e)) => (e.kind(), e.to_string()),
            Err(MailboxError::Closed) => {
                self.domain_actor_died();
                return None;
            }
            Err(MailboxError::Timeout) => (FailureKind::Outage, "domain actor timed out".into()),
        };
        match kind {
            FailureKind::Outage if delivery.parked < PARK_LIMIT => {
                gate.report_outage(&cause);
                Some(Settlement::Park)
            }
            FailureKind::Outage | FailureKind::Retry => {
                let delay = backoff(delivery.delivery_count + 1, RETRY_HOLD_CAP);
                warn!(log, "the message failed, it will be redelivered";
                    "err" => cause, "delivery_count" => delivery.delivery_count,
                    "parked" => delivery.parked, "retry_in_ms" => delay.as_millis() as u64);
                // Holding the message before returning it spaces the
                // redeliveries out.
                tokio::time::sleep(delay).await;
                Some(Settlement::Retry)
            }
            FailureKind::Poison => {
                error!(log, "the message can never succeed, dead-lettering"; "err" => cause);
                Some(Settlement::DeadLetter)
            }
        }
    }

    /// A panic in a handler closed the mailbox. Retrying against it would
    /// only burn deliveries: stop consuming and let the service exit.
    fn domain_actor_died(&self) {
        let reason = "a domain actor has stopped (a handler panicked); restart the service";
        if self.context.health.failure().is_none() {
            error!(
                self.context.log,
                "{reason}: consumption stopped, deliveries left to the broker"
            );
        }
        self.context.health.fail(reason);
        self.context.gate.stop();
    }
}

async fn settle(
    delivery: IncomingMessage,
    settlement: Option<Settlement>,
    stats: Arc<ConsumerStats>,
    log: Logger,
) {
    let Some(settlement) = settlement else {
        // Unacknowledged: the broker hands it out again once the
        // subscription closes.
        drop(delivery);
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        return;
    };
    let settled = delivery.settle(settlement).await;
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    match settled {
        Ok(()) => stats.count(settlement),
        Err(e) => {
            // The channel is gone: the broker returns the message to the queue
            // by itself, and the idempotent handler absorbs the redelivery.
            stats.settle_failures.fetch_add(1, Ordering::Relaxed);
            warn!(log, "could not settle delivery, it will be redelivered";
                "settlement" => ?settlement, "err" => %e);
        }
    }
}

#[cfg(test)]
mod tests;
