//! The AMQP consumer actor shared by every consuming service: it decodes each
//! delivery into an event `E`, forwards it as a typed message `M` to a domain
//! actor and settles the delivery only once that actor has answered.

use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::Stream;

use actix::prelude::*;
use slog::{Logger, error, info, o, warn};

use crate::amqp::{self, ConsumerQueues, Source};
use crate::broker::{IncomingMessage, Settlement};
use crate::config::ConsumerSettings;
use crate::events::{Event, decode};
use crate::retry::backoff;

/// Lets the consumer tell a failure worth retrying (database down) from one
/// that will fail the same way every time.
pub trait Transience {
    fn is_transient(&self) -> bool;
}

/// A handler that cannot fail.
impl Transience for std::convert::Infallible {
    fn is_transient(&self) -> bool {
        match *self {}
    }
}

/// A database error is worth retrying: the database comes back; a message
/// that keeps failing is dead-lettered by the queue's delivery limit.
impl Transience for sea_orm::DbErr {
    fn is_transient(&self) -> bool {
        true
    }
}

/// Counters of what the consumer did, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Deliveries received and not settled yet.
    pub in_flight: AtomicU64,
    pub acked: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub settle_failures: AtomicU64,
}

impl ConsumerStats {
    fn count(&self, settlement: Settlement) {
        let counter = match settlement {
            Settlement::Ack => &self.acked,
            Settlement::Retry => &self.retried,
            Settlement::DeadLetter => &self.dead_lettered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Decides how to settle a delivery from the domain actor's answer.
pub fn settlement_for<T, E: Transience>(
    outcome: &Result<Result<T, E>, MailboxError>,
) -> Settlement {
    match outcome {
        Ok(Ok(_)) => Settlement::Ack,
        Ok(Err(e)) if e.is_transient() => Settlement::Retry,
        Ok(Err(_)) => Settlement::DeadLetter,
        // The domain actor is gone or overloaded: someone else may succeed.
        Err(_) => Settlement::Retry,
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
    stats: Arc<ConsumerStats>,
    /// The delivery stream, until a `Drain` drops it.
    deliveries: Option<SpawnHandle>,
    log: Logger,
}

impl<E, M> EventConsumer<E, M>
where
    M: Message + Send,
    M::Result: Send,
{
    pub fn new(target: Recipient<M>, stats: Arc<ConsumerStats>, log: Logger) -> Self {
        Self {
            event: PhantomData,
            target,
            stats,
            deliveries: None,
            log,
        }
    }
}

/// How long a stopping service waits for its deliveries in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Stop taking deliveries and wait, up to `timeout`, for those in flight to
/// be settled. Answers how many were still in flight at the end (they go
/// back to the queue when the connection closes).
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Drain {
    pub timeout: Duration,
}

impl<E, M, T, Er> Actor for EventConsumer<E, M>
where
    E: Event,
    M: Message<Result = Result<T, Er>> + From<E> + Send + 'static,
    T: Send + 'static,
    Er: Transience + Display + Send + 'static,
{
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        info!(self.log, "consumer started");
    }
}

impl<E, M, T, Er> EventConsumer<E, M>
where
    E: Event,
    M: Message<Result = Result<T, Er>> + From<E> + Send + 'static,
    T: Send + 'static,
    Er: Transience + Display + Send + 'static,
{
    /// Starts the consumer on the queue `service` keeps for `source` on the
    /// broker at `amqp_url`, declaring it and reconnecting as needed.
    pub fn start_consuming(
        self,
        amqp_url: &str,
        service: &'static str,
        source: Source,
        settings: ConsumerSettings,
    ) -> Addr<Self> {
        let queues = ConsumerQueues::new(service, source, settings.delivery_limit);
        let deliveries = amqp::consume(
            amqp_url.to_string(),
            queues,
            settings.prefetch,
            self.log.clone(),
        );
        self.start_on(deliveries)
    }

    /// Starts the consumer on `deliveries`.
    pub fn start_on<S>(self, deliveries: S) -> Addr<Self>
    where
        S: Stream<Item = IncomingMessage> + 'static,
    {
        Self::create(|ctx| {
            let mut consumer = self;
            consumer.deliveries = Some(ctx.add_stream(deliveries));
            consumer
        })
    }
}

impl<E, M, T, Er> Handler<Drain> for EventConsumer<E, M>
where
    E: Event,
    M: Message<Result = Result<T, Er>> + From<E> + Send + 'static,
    T: Send + 'static,
    Er: Transience + Display + Send + 'static,
{
    type Result = ResponseFuture<u64>;

    fn handle(&mut self, drain: Drain, ctx: &mut Self::Context) -> Self::Result {
        if let Some(deliveries) = self.deliveries.take() {
            ctx.cancel_future(deliveries);
        }
        let stats = self.stats.clone();
        let log = self.log.clone();
        let deadline = Instant::now() + drain.timeout;
        Box::pin(async move {
            info!(log, "draining: no new deliveries";
                "in_flight" => stats.in_flight.load(Ordering::SeqCst));
            loop {
                let in_flight = stats.in_flight.load(Ordering::SeqCst);
                if in_flight == 0 || Instant::now() >= deadline {
                    info!(log, "drained"; "left_in_flight" => in_flight);
                    return in_flight;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

impl<E, M, T, Er> StreamHandler<IncomingMessage> for EventConsumer<E, M>
where
    E: Event,
    M: Message<Result = Result<T, Er>> + From<E> + Send + 'static,
    T: Send + 'static,
    Er: Transience + Display + Send + 'static,
{
    fn handle(&mut self, delivery: IncomingMessage, ctx: &mut Self::Context) {
        let stats = self.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        let event = match decode::<E>(&delivery.body) {
            Ok(event) => event,
            Err(reason) => {
                let log = self
                    .log
                    .new(o!("message_id" => delivery.message_id.clone()));
                error!(log, "dead-lettering an invalid message"; "reason" => %reason);
                ctx.spawn(settle(delivery, Settlement::DeadLetter, stats, log).into_actor(self));
                return;
            }
        };
        let log = self.log.new(o!(
            "event_id" => event.event_id().to_string(),
            "order_id" => event.order_id().to_string(),
        ));
        let target = self.target.clone();
        // Deliveries are handled concurrently, up to the prefetch; the domain
        // actor decides how much of that work it serializes.
        ctx.spawn(
            async move {
                let outcome = target.send(M::from(event)).await;
                let settlement = settlement_for(&outcome);
                match &outcome {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if settlement == Settlement::Retry => {
                        let delay = backoff(delivery.delivery_count + 1, Duration::from_secs(10));
                        warn!(log, "transient failure, the message will be redelivered";
                            "err" => %e, "delivery_count" => delivery.delivery_count,
                            "retry_in_ms" => delay.as_millis() as u64);
                        // Holding the message before returning it spaces the retries
                        // out instead of spinning on a database that is down.
                        tokio::time::sleep(delay).await;
                    }
                    Ok(Err(e)) => error!(log, "permanent failure, dead-lettering"; "err" => %e),
                    Err(e) => warn!(log, "domain actor unavailable, requeueing"; "err" => %e),
                }
                settle(delivery, settlement, stats, log).await
            }
            .into_actor(self),
        );
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // Not `ctx.stop()`: deliveries still in flight must be settled. The
        // actor stops by itself once they are and nobody holds its address.
        warn!(
            self.log,
            "delivery stream ended, finishing deliveries in flight"
        );
    }
}

async fn settle(
    delivery: IncomingMessage,
    settlement: Settlement,
    stats: Arc<ConsumerStats>,
    log: Logger,
) {
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
mod tests {
    use super::*;
    use crate::broker::memory::InMemoryBroker;
    use crate::events::OrderCreated;
    use crate::telemetry::test_logger;

    /// A domain actor whose answers the test scripts by product id.
    struct ScriptedHandler {
        seen: Vec<OrderCreated>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("scripted failure (transient: {0})")]
    struct ScriptedError(bool);

    impl Transience for ScriptedError {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    struct Handle(OrderCreated);

    impl Message for Handle {
        type Result = Result<(), ScriptedError>;
    }

    impl From<OrderCreated> for Handle {
        fn from(event: OrderCreated) -> Self {
            Handle(event)
        }
    }

    impl Actor for ScriptedHandler {
        type Context = Context<Self>;
    }

    impl actix::Handler<Handle> for ScriptedHandler {
        type Result = Result<(), ScriptedError>;
        fn handle(&mut self, Handle(event): Handle, _: &mut Context<Self>) -> Self::Result {
            self.seen.push(event.clone());
            match event.product_id.as_str() {
                "transient" => Err(ScriptedError(true)),
                "permanent" => Err(ScriptedError(false)),
                _ => Ok(()),
            }
        }
    }

    struct Seen;
    impl Message for Seen {
        type Result = usize;
    }
    impl actix::Handler<Seen> for ScriptedHandler {
        type Result = usize;
        fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> usize {
            self.seen.len()
        }
    }

    fn body(product_id: &str) -> Vec<u8> {
        serde_json::to_vec(&OrderCreated::new(product_id.into(), 1)).unwrap()
    }

    #[actix::test]
    async fn settles_each_delivery_by_the_handler_outcome() {
        // Arrange
        let broker = InMemoryBroker::new();
        let handler = ScriptedHandler { seen: vec![] }.start();
        let stats = Arc::new(ConsumerStats::default());
        let deliveries = vec![
            broker.delivery(body("123"), Some("ok")),
            broker.delivery(b"{not json".to_vec(), Some("garbage")),
            broker.delivery(body("permanent"), Some("permanent")),
            broker.delivery(body("transient"), Some("transient")),
            broker.delivery(body("456"), Some("ok-after-garbage")),
        ];

        // Act
        let consumer = EventConsumer::<OrderCreated, _>::new(
            handler.clone().recipient::<Handle>(),
            stats.clone(),
            test_logger(),
        );
        let _consumer = consumer.start_on(futures_util::stream::iter(deliveries));
        let mut settled = broker.wait_for_settlements(5, Duration::from_secs(5)).await;

        // Assert
        settled.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [
            ("garbage", Settlement::DeadLetter),
            ("ok", Settlement::Ack),
            ("ok-after-garbage", Settlement::Ack),
            ("permanent", Settlement::DeadLetter),
            ("transient", Settlement::Retry),
        ];
        let settled: Vec<_> = settled
            .iter()
            .map(|(id, s)| (id.as_deref().unwrap(), *s))
            .collect();
        assert_eq!(settled, expected);
        // The undecodable body never reached the domain actor.
        assert_eq!(handler.send(Seen).await.unwrap(), 4);
        assert_eq!(stats.acked.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dead_lettered.load(Ordering::Relaxed), 2);
        assert_eq!(stats.retried.load(Ordering::Relaxed), 1);
    }

    struct StopNow;
    impl Message for StopNow {
        type Result = ();
    }
    impl actix::Handler<StopNow> for ScriptedHandler {
        type Result = ();
        fn handle(&mut self, _: StopNow, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    #[actix::test]
    async fn requeues_when_the_domain_actor_is_gone() {
        // Arrange: a domain actor that has stopped, so its mailbox is closed.
        let broker = InMemoryBroker::new();
        let handler = ScriptedHandler { seen: vec![] }.start();
        handler.send(StopNow).await.unwrap();
        let consumer = EventConsumer::<OrderCreated, _>::new(
            handler.recipient::<Handle>(),
            Arc::new(ConsumerStats::default()),
            test_logger(),
        );

        // Act
        let _consumer = consumer.start_on(futures_util::stream::iter([
            broker.delivery(body("123"), Some("m"))
        ]));

        // Assert
        let settled = broker.wait_for_settlements(1, Duration::from_secs(5)).await;
        assert_eq!(settled, [(Some("m".to_string()), Settlement::Retry)]);
    }

    #[actix::test]
    async fn drain_stops_taking_deliveries_and_waits_for_those_in_flight() {
        // Arrange: a delivery in flight (a transient failure is held ~200 ms).
        let broker = InMemoryBroker::new();
        let handler = ScriptedHandler { seen: vec![] }.start();
        let stats = Arc::new(ConsumerStats::default());
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let deliveries = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let consumer = EventConsumer::<OrderCreated, _>::new(
            handler.recipient::<Handle>(),
            stats.clone(),
            test_logger(),
        )
        .start_on(deliveries);
        sender
            .send(broker.delivery(body("transient"), Some("in-flight")))
            .await
            .unwrap();
        while stats.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // Act
        let left = consumer
            .send(Drain {
                timeout: Duration::from_secs(5),
            })
            .await
            .unwrap();

        // Assert: the delivery in flight was settled, and no more are taken.
        assert_eq!(left, 0);
        assert_eq!(
            broker.settlements(),
            [(Some("in-flight".to_string()), Settlement::Retry)]
        );
        assert!(
            sender
                .send(broker.delivery(body("123"), Some("late")))
                .await
                .is_err(),
            "the delivery stream is closed"
        );
    }
}
