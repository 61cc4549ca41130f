use std::sync::atomic::{AtomicU32, AtomicU64};

use super::*;
use crate::broker::memory::InMemoryBroker;
use contracts::events::OrderCreated;
use foundation::failure::Classify;
use foundation::health::ServiceHealth;
use foundation::outage::{Gate, Probe};
use foundation::telemetry::test_logger;

/// A domain actor whose answer the test scripts by product id: "retry"
/// fails for its own reason, "poison" can never succeed, "panic" kills the
/// actor, "slow" takes 200 ms; while `database_up` is false the whole batch
/// fails with an outage, and so does each of the next `degraded` batches
/// (a database that answers the probe but fails the work).
struct ScriptedHandler {
    database_up: Arc<AtomicBool>,
    degraded: Arc<AtomicU32>,
    handled: Arc<AtomicU32>,
}

#[derive(Debug, thiserror::Error)]
#[error("scripted failure ({0:?})")]
struct ScriptedError(FailureKind);

impl Classify for ScriptedError {
    fn kind(&self) -> FailureKind {
        self.0
    }
}

struct Handle(Vec<OrderCreated>);

impl Message for Handle {
    type Result = BatchResult<(), ScriptedError>;
}

impl From<Vec<OrderCreated>> for Handle {
    fn from(events: Vec<OrderCreated>) -> Self {
        Handle(events)
    }
}

impl Actor for ScriptedHandler {
    type Context = Context<Self>;
}

impl actix::Handler<Handle> for ScriptedHandler {
    type Result = ResponseFuture<BatchResult<(), ScriptedError>>;

    fn handle(&mut self, Handle(events): Handle, _: &mut Context<Self>) -> Self::Result {
        self.handled
            .fetch_add(events.len() as u32, Ordering::SeqCst);
        let product = |event: &OrderCreated| event.product_id.clone();
        assert!(
            !events.iter().any(|e| product(e) == "panic"),
            "a scripted bug in a handler"
        );
        let slow = events.iter().any(|e| product(e) == "slow");
        let degraded = self
            .degraded
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let answer = if self.database_up.load(Ordering::SeqCst) && !degraded {
            Ok(events
                .iter()
                .map(|event| match product(event).as_str() {
                    "retry" => Err(ScriptedError(FailureKind::Retry)),
                    "poison" => Err(ScriptedError(FailureKind::Poison)),
                    _ => Ok(()),
                })
                .collect())
        } else {
            Err(ScriptedError(FailureKind::Outage))
        };
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer
        })
    }
}

struct Harness {
    database_up: Arc<AtomicBool>,
    degraded: Arc<AtomicU32>,
    handled: Arc<AtomicU32>,
    probes: Arc<AtomicU32>,
    context: ConsumerContext,
    consumer: Addr<EventConsumer<OrderCreated, Handle>>,
}

impl Harness {
    /// A consumer on the in-memory broker's queue, whose gate probes the
    /// scripted database.
    fn start(broker: InMemoryBroker) -> Self {
        let database_up = Arc::new(AtomicBool::new(true));
        let (handled, probes) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let probe: Probe = {
            let (up, probes) = (database_up.clone(), probes.clone());
            Arc::new(move || {
                probes.fetch_add(1, Ordering::SeqCst);
                let up = up.load(Ordering::SeqCst);
                Box::pin(async move { if up { Ok(()) } else { Err("refused".into()) } })
            })
        };
        let context = ConsumerContext {
            gate: Gate::new(probe.clone(), test_logger()),
            health: ServiceHealth::new(),
            stats: ConsumerStatsByQueue::default(),
            readiness: foundation::readiness::Readiness::new(probe, test_logger()),
            max_batch: 64,
            max_message_bytes: contracts::events::MAX_EVENT_BYTES,
            log: test_logger(),
        };
        let degraded = Arc::new(AtomicU32::new(0));
        let handler = ScriptedHandler {
            database_up: database_up.clone(),
            degraded: degraded.clone(),
            handled: handled.clone(),
        }
        .start();
        let consumer = EventConsumer::<OrderCreated, _>::new(handler.recipient(), context.clone())
            .start_on(broker.subscribe());
        Self {
            database_up,
            degraded,
            handled,
            probes,
            context,
            consumer,
        }
    }

    fn stat(&self, counter: impl Fn(&ConsumerStats) -> &AtomicU64) -> u64 {
        counter(&self.context.stats.by_queue()[InMemoryBroker::QUEUE]).load(Ordering::SeqCst)
    }
}

fn body(product_id: &str) -> Vec<u8> {
    serde_json::to_vec(&OrderCreated::new(product_id.into(), 1)).unwrap()
}

async fn wait_for(what: &str, mut fact: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fact() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix::test]
async fn settles_each_delivery_by_whose_fault_the_failure_is() {
    // Arrange: a queue that dead-letters after 2 redeliveries.
    let broker = InMemoryBroker::with_delivery_limit(2);
    for (product, id) in [
        ("123", "ok"),
        ("poison", "poison"),
        ("retry", "retry"),
        ("456", "ok-after-the-others"),
    ] {
        broker.enqueue(body(product), Some(id));
    }
    broker.enqueue(b"{not json".to_vec(), Some("garbage"));

    // Act
    let harness = Harness::start(broker.clone());
    wait_for("three dead letters", || broker.dead_lettered().len() == 3).await;

    // Assert: the retried message came back twice before the limit took it.
    let mut settled = broker.settlements();
    settled.sort_by(|a, b| a.0.cmp(&b.0));
    let settled: Vec<_> = settled
        .iter()
        .map(|(id, s)| (id.as_deref().unwrap(), *s))
        .collect();
    assert_eq!(
        settled,
        [
            ("garbage", Settlement::DeadLetter),
            ("ok", Settlement::Ack),
            ("ok-after-the-others", Settlement::Ack),
            ("poison", Settlement::DeadLetter),
            ("retry", Settlement::Retry),
            ("retry", Settlement::Retry),
            ("retry", Settlement::Retry),
        ]
    );
    let mut dead = broker.dead_lettered();
    dead.sort();
    assert_eq!(
        dead,
        [
            Some("garbage".to_string()),
            Some("poison".to_string()),
            Some("retry".to_string())
        ]
    );
    // The undecodable body never reached the domain actor.
    assert_eq!(harness.handled.load(Ordering::SeqCst), 2 + 1 + 3);
    assert_eq!(harness.stat(|s| &s.acked), 2);
    assert_eq!(harness.stat(|s| &s.dead_lettered), 2);
    assert_eq!(harness.stat(|s| &s.retried), 3);
    assert_eq!(
        harness.stat(|s| &s.redelivered),
        2,
        "the retried one, twice"
    );
}

#[actix::test]
async fn an_outage_parks_the_deliveries_and_pauses_until_the_probe_succeeds() {
    // Arrange: the database is down when the orders arrive.
    let broker = InMemoryBroker::with_delivery_limit(2);
    let harness = Harness::start(broker.clone());
    harness.database_up.store(false, Ordering::SeqCst);
    for n in 0..5 {
        broker.enqueue(body("123"), Some(&format!("order-{n}")));
    }

    // Act: wait until every order is back in the queue, uncounted, and the
    // consumer has paused and probed.
    wait_for("the orders parked and the consumer paused", || {
        broker.ready() == 5
            && harness.stat(|s| &s.in_flight) == 0
            && broker.paused()
            && harness.probes.load(Ordering::SeqCst) >= 2
    })
    .await;

    // Assert: nothing acknowledged, nothing counted against the limit.
    assert!(
        broker
            .settlements()
            .iter()
            .all(|(_, s)| *s == Settlement::Park)
    );
    assert_eq!(harness.stat(|s| &s.retried), 0);

    // Act: the database is back.
    harness.database_up.store(true, Ordering::SeqCst);

    // Assert: every order acknowledged once, none dead.
    wait_for("five acks", || harness.stat(|s| &s.acked) == 5).await;
    let mut acked: Vec<_> = broker
        .settlements()
        .into_iter()
        .filter(|(_, s)| *s == Settlement::Ack)
        .map(|(id, _)| id.unwrap())
        .collect();
    acked.sort();
    let expected: Vec<_> = (0..5).map(|n| format!("order-{n}")).collect();
    assert_eq!(acked, expected);
    assert_eq!(broker.dead_lettered(), []);
    assert_eq!(harness.context.gate.state(), GateState::Open);
    assert!(!broker.paused());
}

#[actix::test]
async fn a_database_that_answers_the_probe_but_fails_the_work_never_dead_letters_good_events() {
    // Arrange: a queue that dead-letters after 2 redeliveries, and a
    // database that passes every probe yet fails the work 30 times in a row
    // (disk full, timeouts, deadlocks). Time is paused: the gate's backoff
    // between the relapses passes at once.
    tokio::time::pause();
    let broker = InMemoryBroker::with_delivery_limit(2);
    let harness = Harness::start(broker.clone());
    harness.degraded.store(30, Ordering::SeqCst);

    // Act
    broker.enqueue(body("123"), Some("good"));

    // Assert: parked through every failure, uncounted, then applied.
    wait_for("the order acknowledged", || harness.stat(|s| &s.acked) == 1).await;
    let settlements = broker.settlements();
    assert_eq!(settlements.len(), 31, "{settlements:?}");
    assert!(
        settlements[..30]
            .iter()
            .all(|(_, s)| *s == Settlement::Park),
        "{settlements:?}"
    );
    assert_eq!(broker.dead_lettered(), []);
    assert_eq!(harness.stat(|s| &s.retried), 0);
    assert_eq!(harness.context.gate.pauses(), 30);
}

#[actix::test]
async fn a_dead_domain_actor_stops_consumption_and_fails_the_service() {
    // Arrange
    let broker = InMemoryBroker::new();
    let harness = Harness::start(broker.clone());

    // Act: a handler panics, and more orders follow.
    broker.enqueue(body("panic"), Some("bug"));
    wait_for("the service to fail", || {
        harness.context.health.failure().is_some()
    })
    .await;
    broker.enqueue(body("123"), Some("after"));
    let left = harness
        .consumer
        .send(Drain {
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();

    // Assert: nothing burnt against the dead mailbox; the order after it
    // stays in the queue, and the subscription is closed.
    assert_eq!(left, 0);
    assert_eq!(broker.settlements(), []);
    assert_eq!(broker.dead_lettered(), []);
    assert_eq!(broker.ready(), 1);
    assert!(broker.closed());
    assert_eq!(harness.context.gate.state(), GateState::Stopped);
}

#[actix::test]
async fn drain_settles_deliveries_in_hand_before_closing_and_takes_no_more() {
    // Arrange: a delivery in flight (the handler takes 200 ms).
    let broker = InMemoryBroker::new();
    let harness = Harness::start(broker.clone());
    broker.enqueue(body("slow"), Some("in-flight"));
    wait_for("the delivery to be in flight", || {
        harness.stat(|s| &s.in_flight) == 1
    })
    .await;

    // Act
    let left = harness
        .consumer
        .send(Drain {
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
    broker.enqueue(body("123"), Some("late"));

    // Assert: acknowledged before the subscription closed; nothing taken after.
    assert_eq!(left, 0);
    assert_eq!(
        broker.settlements(),
        [(Some("in-flight".to_string()), Settlement::Ack)]
    );
    assert!(broker.closed());
    assert_eq!(broker.ready(), 1);
}

#[actix::test]
async fn what_arrives_while_a_batch_is_committed_goes_in_the_next_one() {
    // Arrange: the first order takes 200 ms to commit.
    let broker = InMemoryBroker::new();
    let harness = Harness::start(broker.clone());
    broker.enqueue(body("slow"), Some("first"));
    wait_for("the first batch in flight", || {
        harness.stat(|s| &s.batches) == 1
    })
    .await;

    // Act: ten more arrive meanwhile.
    for n in 0..10 {
        broker.enqueue(body("123"), Some(&format!("next-{n}")));
    }
    wait_for("eleven acks", || harness.stat(|s| &s.acked) == 11).await;

    // Assert: two commits for eleven orders.
    assert_eq!(harness.stat(|s| &s.batches), 2);
    assert_eq!(harness.handled.load(Ordering::SeqCst), 11);
}

#[actix::test]
async fn each_queue_is_counted_under_its_name() {
    // Arrange: a second consumer in the same service, of another queue.
    let (broker, other) = (InMemoryBroker::new(), InMemoryBroker::new());
    let harness = Harness::start(broker.clone());
    let handler = ScriptedHandler {
        database_up: harness.database_up.clone(),
        degraded: harness.degraded.clone(),
        handled: harness.handled.clone(),
    }
    .start();
    let mut subscription = other.subscribe();
    subscription.queue = "other.queue".into();
    let _other =
        EventConsumer::<OrderCreated, _>::new(handler.recipient(), harness.context.clone())
            .start_on(subscription);

    // Act
    broker.enqueue(body("123"), Some("first"));
    broker.enqueue(body("456"), Some("second"));
    other.enqueue(body("poison"), Some("third"));
    wait_for("two acks and a dead letter", || {
        let by_queue = harness.context.stats.by_queue();
        let load = |queue: &str, counter: fn(&ConsumerStats) -> &AtomicU64| {
            counter(&by_queue[queue]).load(Ordering::SeqCst)
        };
        load(InMemoryBroker::QUEUE, |s| &s.acked) == 2
            && load("other.queue", |s| &s.dead_lettered) == 1
    })
    .await;

    // Assert: each figure on the queue it happened to.
    let by_queue = harness.context.stats.by_queue();
    let load = |queue: &str, counter: fn(&ConsumerStats) -> &AtomicU64| {
        counter(&by_queue[queue]).load(Ordering::SeqCst)
    };
    assert_eq!(
        [
            load(InMemoryBroker::QUEUE, |s| &s.acked),
            load(InMemoryBroker::QUEUE, |s| &s.dead_lettered),
            load("other.queue", |s| &s.acked),
            load("other.queue", |s| &s.dead_lettered),
            load("other.queue", |s| &s.in_flight),
            load("other.queue", |s| &s.batches),
            load(InMemoryBroker::QUEUE, |s| &s.settle_failures),
        ],
        [2, 0, 0, 1, 0, 1, 0]
    );
    assert_eq!(harness.context.gate.pauses(), 0);
}
