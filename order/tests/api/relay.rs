//! The outbox relay with an in-memory broker and a real database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use foundation::telemetry::test_logger;
use messaging::broker::memory::InMemoryBroker;
use messaging::outbox::Outbox;
use messaging::outbox::relay::{GetRelayCounters, OutboxRelay, RelaySettings};
use order::SERVICE;
use order::domain::order::Placed;
use order::domain::order_request::OrderRequest;
use order::store::{NewOrder, OrderStore};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use testkit::{TestDatabase, count, eventually};

use crate::helpers::{WAIT, relay_settings};

async fn database() -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    migration::migrate(&db).await.unwrap();
    (database, db)
}

async fn place(db: &DatabaseConnection, count: usize) -> Vec<String> {
    let store = OrderStore::new(db.clone());
    let mut ids = Vec::new();
    for _ in 0..count {
        let new_order = NewOrder {
            order: OrderRequest::default(),
            key: None,
            request_id: None,
        };
        let placed = store.place_all(&[new_order]).await.remove(0).unwrap();
        let Placed::Created(order) = placed else {
            panic!("a new order")
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT event_id::text FROM outbox WHERE payload::jsonb->>'order_id' = $1",
                [order.order_id.to_string().into()],
            ))
            .await
            .unwrap()
            .expect("the order's outbox row");
        ids.push(row.try_get_by_index::<String>(0).unwrap());
    }
    ids
}

fn start_relay(
    db: &DatabaseConnection,
    broker: &InMemoryBroker,
    settings: RelaySettings,
) -> Addr<OutboxRelay> {
    OutboxRelay::new(
        Outbox::new(db.clone(), SERVICE),
        Arc::new(broker.clone()),
        settings,
        test_logger(),
    )
    .start()
}

/// Waits until the relay has run `more` rounds after this call: it had its
/// chances to publish whatever it would.
async fn wait_rounds(relay: &Addr<OutboxRelay>, more: u64) {
    let start = relay.send(GetRelayCounters).await.unwrap().rounds;
    eventually(WAIT, &format!("{more} more relay rounds"), || async {
        let rounds = relay.send(GetRelayCounters).await.unwrap().rounds;
        (rounds >= start + more).then_some(())
    })
    .await;
}

async fn wait_published(broker: &InMemoryBroker, expected: usize) {
    eventually(WAIT, &format!("{expected} published events"), || async {
        (broker.published().len() >= expected).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn publishes_rows_left_pending_and_marks_them() {
    // Arrange: rows committed before the relay starts, as after a restart.
    let (_database, db) = database().await;
    let ids = place(&db, 3).await;
    let broker = InMemoryBroker::new();

    // Act
    let relay = start_relay(&db, &broker, relay_settings());
    wait_published(&broker, 3).await;

    // Assert
    let published: Vec<_> = broker
        .published()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(published, ids, "oldest first, each once");
    eventually(WAIT, "rows marked published", || async {
        (count(
            &db,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        )
        .await
            == 0)
            .then_some(())
    })
    .await;
    wait_rounds(&relay, 2).await;
    assert_eq!(broker.published().len(), 3, "no row published twice");
    assert_eq!(relay.send(GetRelayCounters).await.unwrap().published, 3);
}

#[actix_web::test]
async fn keeps_rows_while_the_broker_refuses_them_then_publishes_each_once() {
    // Arrange
    let (_database, db) = database().await;
    let broker = InMemoryBroker::new();
    broker.refuse_publishes(true);
    let relay = start_relay(&db, &broker, relay_settings());
    place(&db, 5).await;

    // Act: the broker is down for a while, then comes back.
    eventually(WAIT, "a failed round", || async {
        (relay.send(GetRelayCounters).await.unwrap().failed_rounds >= 2).then_some(())
    })
    .await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        5
    );
    broker.refuse_publishes(false);
    wait_published(&broker, 5).await;

    // Assert
    wait_rounds(&relay, 2).await;
    assert_eq!(broker.published().len(), 5);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );
}

#[actix_web::test]
async fn two_replicas_never_publish_the_same_row() {
    // Arrange: two relays on one outbox, as two order replicas would run.
    let (_database, db) = database().await;
    let broker = InMemoryBroker::new();
    let settings = RelaySettings {
        batch_size: 20,
        ..relay_settings()
    };
    let ids: HashSet<_> = place(&db, 300).await.into_iter().collect();

    // Act
    let first = start_relay(&db, &broker, settings.clone());
    let second = start_relay(&db, &broker, settings);
    wait_published(&broker, 300).await;
    wait_rounds(&first, 2).await;
    wait_rounds(&second, 2).await;

    // Assert
    let published: Vec<_> = broker
        .published()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(published.len(), 300, "each row published exactly once");
    assert_eq!(published.into_iter().collect::<HashSet<_>>(), ids);
}

#[actix_web::test]
async fn prunes_published_rows_after_the_retention_period() {
    let (_database, db) = database().await;
    let broker = InMemoryBroker::new();
    place(&db, 4).await;

    let relay = start_relay(
        &db,
        &broker,
        RelaySettings {
            retention: Duration::ZERO,
            prune_interval: Duration::from_millis(100),
            ..relay_settings()
        },
    );
    wait_published(&broker, 4).await;

    eventually(WAIT, "the outbox to be pruned", || async {
        (count(&db, "SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;
    assert_eq!(relay.send(GetRelayCounters).await.unwrap().pruned, 4);
    assert_eq!(
        count(&db, "SELECT count(*) FROM orders").await,
        4,
        "orders are kept"
    );
}

#[actix_web::test]
async fn a_row_claimed_by_a_relay_that_died_is_published_once_its_lease_ends() {
    // Arrange: a relay claimed two rows for 1 s and died before publishing.
    let (_database, db) = database().await;
    let ids = place(&db, 2).await;
    let claimed = Outbox::new(db.clone(), SERVICE)
        .claim(10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let broker = InMemoryBroker::new();

    // Act
    let relay = start_relay(&db, &broker, relay_settings());
    wait_published(&broker, 2).await;

    // Assert
    let published: Vec<_> = broker
        .published()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(published, ids);
    eventually(WAIT, "rows marked published", || async {
        (relay.send(GetRelayCounters).await.unwrap().published == 2).then_some(())
    })
    .await;
}

/// A broker that takes a publish and answers only when the test says so.
#[derive(Clone)]
struct StalledBroker {
    broker: InMemoryBroker,
    called: Arc<tokio::sync::Notify>,
    answer: Arc<tokio::sync::Notify>,
}

impl messaging::broker::Publisher for StalledBroker {
    fn publish_all(
        &self,
        messages: Vec<messaging::broker::OutgoingMessage>,
    ) -> futures_util::future::BoxFuture<'static, Vec<Result<(), messaging::broker::BrokerError>>>
    {
        let stalled = self.clone();
        Box::pin(async move {
            stalled.called.notify_one();
            stalled.answer.notified().await;
            stalled.broker.publish_all(messages).await
        })
    }
}

#[actix_web::test]
async fn no_lock_or_transaction_is_held_while_the_broker_is_slow_to_confirm() {
    // Arrange: one order, and a broker that stalls its confirms.
    let (_database, db) = database().await;
    let ids = place(&db, 1).await;
    let stalled = StalledBroker {
        broker: InMemoryBroker::new(),
        called: Arc::default(),
        answer: Arc::default(),
    };

    // Act: the relay claims the row and waits on the broker.
    let _relay = OutboxRelay::new(
        Outbox::new(db.clone(), SERVICE),
        Arc::new(stalled.clone()),
        relay_settings(),
        test_logger(),
    )
    .start();
    tokio::time::timeout(WAIT, stalled.called.notified())
        .await
        .expect("the relay publishes");

    // Assert: the row is leased, yet neither locked nor inside an open
    // transaction; once the broker confirms, it is marked published.
    let leased = "SELECT count(*) FROM outbox WHERE claimed_until > now() AND published_at IS NULL";
    assert_eq!(count(&db, leased).await, 1);
    let locked = db
        .execute_unprepared(&format!(
            "BEGIN; SELECT 1 FROM outbox WHERE event_id = '{}' FOR UPDATE NOWAIT; COMMIT;",
            ids[0]
        ))
        .await;
    assert!(locked.is_ok(), "the row is not locked: {locked:?}");
    let idle_in_transaction = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'";
    assert_eq!(count(&db, idle_in_transaction).await, 0);
    stalled.answer.notify_one();
    eventually(WAIT, "the row marked published", || async {
        (count(
            &db,
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
}

#[actix_web::test]
async fn a_broker_that_never_answers_fails_a_whole_batch_within_one_connect_timeout() {
    // Arrange: a "broker" that accepts the connection and never answers.
    let proxy = testkit::TcpProxy::start(testkit::amqp_address());
    proxy.hold();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    let publisher = messaging::amqp::AmqpPublisher::new(&url, "test-publisher", &test_logger());
    let message = |n: u32| messaging::broker::OutgoingMessage {
        exchange: contracts::topology::ORDER_EXCHANGE.into(),
        message_id: format!("m{n}"),
        body: b"{}".to_vec(),
        correlation_id: None,
    };

    // Act
    let started = std::time::Instant::now();
    let results =
        messaging::broker::Publisher::publish_all(&publisher, (0..3).map(message).collect()).await;

    // Assert: every message failed, after one connection attempt, not three.
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= messaging::amqp::CONNECT_TIMEOUT
            && elapsed < messaging::amqp::CONNECT_TIMEOUT + Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[actix_web::test]
async fn pruning_deletes_in_bounded_statements_until_nothing_is_left() {
    // Arrange: 20,000 published rows, as a long downtime of pruning leaves
    // them; an unpublished row and another service's row are to be kept.
    let (_database, db) = database().await;
    db.execute_unprepared(
        "INSERT INTO outbox (event_id, source, exchange, payload, created_at, published_at)
         SELECT gen_random_uuid(), 'order', 'order_exchange', '{}', now() - interval '9 days',
                now() - interval '8 days'
         FROM generate_series(1, 20000)",
    )
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO outbox (event_id, source, exchange, payload, created_at, published_at)
         VALUES (gen_random_uuid(), 'order', 'order_exchange', '{}', now(), NULL),
                (gen_random_uuid(), 'product', 'stock_exchange', '{}', now(), now() - interval '8 days')",
    )
    .await
    .unwrap();
    let outbox = Outbox::new(db.clone(), SERVICE);

    // Act
    let pruned = outbox
        .prune(Duration::from_secs(7 * 24 * 3600), 700)
        .await
        .unwrap();

    // Assert: 28 full statements of 700 and one of the last 400.
    assert_eq!(pruned.rows, 20_000);
    assert_eq!(pruned.statements, 29);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE source = 'order'").await,
        1,
        "the unpublished row is kept"
    );
}
