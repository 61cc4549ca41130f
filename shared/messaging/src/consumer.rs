//! The consumer actor shared by every consuming service: it decodes each
//! delivery into an event `E`, hands the events to a domain actor in
//! batches (message `M`: what arrives while one batch is being committed
//! goes into the next) and settles each delivery only once that actor has
//! answered for it.
//!
//! How a failure is settled depends on whose fault it is ([`FailureKind`]):
//! a dependency's outage parks the message (a fresh copy back in the queue,
//! uncounted) and pauses the service's consumers until a probe finds the
//! dependency again ([`Gate`]); a failure of the message itself returns it
//! to the queue, whose delivery limit dead-letters it if it keeps failing; a
//! message that can never succeed is dead-lettered at once.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use slog::{Logger, error, info, o, warn};

use crate::broker::{IncomingMessage, Settlement, Subscription, SubscriptionControl};
use contracts::events::{Event, decode};
use foundation::failure::{Classify as _, FailureKind};
use foundation::outage::GateState;
use foundation::retry::backoff;

mod batch;
mod context;
mod settle;
mod stats;

pub use batch::{BatchResult, FromEvents, batch_or_each};
pub use context::ConsumerContext;
use settle::settle;
pub use stats::{ConsumerStats, ConsumerStatsByQueue};

/// A message parked this many times more is logged again: one that keeps
/// meeting an outage while the probe finds the database writable deserves
/// an operator's look, but it is never retried as its own fault.
const PARKED_WARNING_EVERY: u32 = 20;
/// Longest hold before a retried message goes back to the queue.
const RETRY_HOLD_CAP: Duration = Duration::from_secs(10);

/// A decoded delivery waiting for its batch.
struct Pending<E> {
    event: E,
    delivery: IncomingMessage,
    log: Logger,
}

/// Consumes deliveries of `E` and forwards them in batches, as `M`s, to
/// `target`.
pub struct EventConsumer<E, M>
where
    M: Message + Send,
    M::Result: Send,
{
    event: PhantomData<fn() -> E>,
    target: Recipient<M>,
    context: ConsumerContext,
    /// The counters of the queue consumed, registered under its name by
    /// [`EventConsumer::start_on`].
    stats: Arc<ConsumerStats>,
    control: Option<Box<dyn SubscriptionControl>>,
    stream_ended: Arc<AtomicBool>,
    /// Deliveries waiting for the batch in flight to be answered.
    waiting: VecDeque<Pending<E>>,
    batch_in_flight: bool,
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
            stats: Arc::default(),
            control: None,
            stream_ended: Arc::default(),
            waiting: VecDeque::new(),
            batch_in_flight: false,
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
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
{
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        info!(self.context.log, "consumer started");
    }
}

impl<E, M> EventConsumer<E, M>
where
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
{
    /// Starts the consumer on `subscription`.
    pub fn start_on(self, subscription: Subscription) -> Addr<Self> {
        Self::create(|ctx| {
            let mut consumer = self;
            consumer.stats = consumer.context.stats.register(&subscription.queue);
            consumer.control = Some(subscription.control);
            consumer
                .context
                .readiness
                .watch(subscription.queue, subscription.attached);
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
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
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
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
{
    type Result = ResponseActFuture<Self, u64>;

    fn handle(&mut self, drain: Drain, _: &mut Self::Context) -> Self::Result {
        if let Some(control) = &self.control {
            control.cancel();
        }
        let stats = self.stats.clone();
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
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
{
    fn handle(&mut self, delivery: IncomingMessage, ctx: &mut Self::Context) {
        let stats = self.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        if delivery.redelivered {
            stats.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let size = delivery.body.len();
        if size > self.context.max_message_bytes {
            let log = self
                .context
                .log
                .new(o!("message_id" => delivery.message_id.clone()));
            error!(log, "dead-lettering an oversize message, not decoded";
                "bytes" => size, "limit" => self.context.max_message_bytes);
            ctx.spawn(settle(delivery, Some(Settlement::DeadLetter), stats, log).into_actor(self));
            return;
        }
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
        let log = foundation::telemetry::event_logger(
            &self.context.log,
            event.event_id(),
            event.order_id(),
            event.request_id(),
        );
        match self.context.gate.state() {
            GateState::Open => {
                self.waiting.push_back(Pending {
                    event,
                    delivery,
                    log,
                });
                self.dispatch(ctx);
            }
            // Handed over just before the pause took effect.
            GateState::Paused => {
                ctx.spawn(settle(delivery, Some(Settlement::Park), stats, log).into_actor(self));
            }
            GateState::Stopped => {
                ctx.spawn(settle(delivery, None, stats, log).into_actor(self));
            }
        }
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

impl<E, M> EventConsumer<E, M>
where
    E: Event + Clone + Unpin,
    M: FromEvents<E>,
{
    /// Hands what is waiting to the domain actor, unless a batch is in
    /// flight: then it goes with the next one, which starts as soon as that
    /// one is answered (a group commit).
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if self.batch_in_flight || self.waiting.is_empty() {
            return;
        }
        let size = self.waiting.len().min(self.context.max_batch);
        let batch: Vec<Pending<E>> = self.waiting.drain(..size).collect();
        let events = batch.iter().map(|pending| pending.event.clone()).collect();
        self.batch_in_flight = true;
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        ctx.spawn(self.target.send(M::from(events)).into_actor(self).map(
            move |answer, consumer, ctx| {
                consumer.batch_in_flight = false;
                consumer.settle_batch(answer, batch, ctx);
                consumer.dispatch(ctx);
            },
        ));
    }

    /// Settles each delivery of a batch by the answer for it.
    fn settle_batch(
        &mut self,
        answer: Result<BatchResult<M::Done, M::Error>, MailboxError>,
        batch: Vec<Pending<E>>,
        ctx: &mut Context<Self>,
    ) {
        let failures: Vec<Option<(FailureKind, String)>> = match answer {
            Ok(Ok(results)) => {
                let mut failures: Vec<_> = results
                    .into_iter()
                    .map(|result| result.err().map(|e| (e.kind(), e.to_string())))
                    .collect();
                // An answer short of the batch leaves the rest unsure: return them.
                failures.resize(batch.len(), Some((FailureKind::Retry, "no answer".into())));
                failures
            }
            Ok(Err(e)) => vec![Some((e.kind(), e.to_string())); batch.len()],
            Err(MailboxError::Closed) => {
                self.domain_actor_died();
                for pending in batch {
                    let stats = self.stats.clone();
                    ctx.spawn(settle(pending.delivery, None, stats, pending.log).into_actor(self));
                }
                return;
            }
            Err(MailboxError::Timeout) => {
                vec![Some((FailureKind::Outage, "domain actor timed out".into())); batch.len()]
            }
        };
        if failures.iter().any(Option::is_none) {
            self.context.gate.report_success();
        }
        for (pending, failure) in batch.into_iter().zip(failures) {
            let settlement = match failure {
                None => Settlement::Ack,
                Some((kind, cause)) => self.settlement_for(kind, &cause, &pending),
            };
            let hold = match settlement {
                // Holding a returned message spaces its redeliveries out.
                Settlement::Retry => backoff(pending.delivery.delivery_count + 1, RETRY_HOLD_CAP),
                _ => Duration::ZERO,
            };
            let stats = self.stats.clone();
            ctx.spawn(
                async move {
                    tokio::time::sleep(hold).await;
                    settle(pending.delivery, Some(settlement), stats, pending.log).await
                }
                .into_actor(self),
            );
        }
    }

    fn settlement_for(&self, kind: FailureKind, cause: &str, pending: &Pending<E>) -> Settlement {
        let delivery = &pending.delivery;
        match kind {
            // A degraded database (disk full, timeouts, deadlocks) can fail
            // the work while the probe succeeds, time after time: still an
            // outage, never counted toward the delivery limit, so no good
            // event is dead-lettered for it. The gate's backoff grows with
            // each relapse.
            FailureKind::Outage => {
                let parked = delivery.parked + 1;
                if parked.is_multiple_of(PARKED_WARNING_EVERY) {
                    warn!(pending.log, "the message keeps meeting a database failure while the database answers the probe; parked again";
                        "err" => cause, "parked" => parked);
                }
                self.context.gate.report_outage(&cause);
                Settlement::Park
            }
            FailureKind::Retry => {
                warn!(pending.log, "the message failed, it will be redelivered";
                    "err" => cause, "delivery_count" => delivery.delivery_count,
                    "parked" => delivery.parked);
                Settlement::Retry
            }
            FailureKind::Poison => {
                error!(pending.log, "the message can never succeed, dead-lettering"; "err" => cause);
                Settlement::DeadLetter
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

#[cfg(test)]
mod tests;
