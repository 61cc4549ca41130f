//! One account per service: each service's PostgreSQL role and RabbitMQ
//! user are refused everything beyond its own tables, rows, exchanges and
//! queues; a service given an account without what it needs exits at
//! startup naming the permission; the services wait for the topology,
//! which the `topology` command declares (with the users) and they cannot.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use contracts::events::OrderCreated;
use contracts::topology::{Needs, Permissions, user_of};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, Database};
use system_tests::STARTUP;
use testkit::{BrokerClient, ServiceProcess, TestDatabase, TestVhost, free_port, wait_until};

/// A statement run as a service's role, and whether the role may run it.
struct Attempt {
    service: &'static str,
    sql: &'static str,
    allowed: bool,
}

const fn may(service: &'static str, sql: &'static str) -> Attempt {
    Attempt {
        service,
        sql,
        allowed: true,
    }
}

const fn may_not(service: &'static str, sql: &'static str) -> Attempt {
    Attempt {
        service,
        sql,
        allowed: false,
    }
}

/// An outbox row staged by `source` for `exchange`.
macro_rules! stage {
    ($source:literal, $exchange:literal) => {
        concat!(
            "INSERT INTO outbox (event_id, source, exchange, payload) VALUES (gen_random_uuid(), '",
            $source,
            "', '",
            $exchange,
            "', '{}')"
        )
    };
}

#[tokio::test]
async fn each_service_role_is_refused_beyond_its_own_tables_and_rows() {
    // Arrange: a migrated database, as `migration up` leaves it (grants included).
    let database = TestDatabase::migrated().await.unwrap();
    let attempts = [
        may("order", "SELECT count(*) FROM orders"),
        may("order", stage!("order", "order_exchange")),
        may_not("order", "SELECT count(*) FROM products"),
        may_not("order", "UPDATE products SET stock = 0"),
        may_not("order", "SELECT count(*) FROM sent_emails"),
        may_not("order", stage!("product", "stock_exchange")),
        may_not("order", "DELETE FROM orders"),
        may_not("order", "DROP TABLE orders"),
        may_not("order", "CREATE TABLE rogue (id int)"),
        may("product", "UPDATE products SET stock = stock"),
        may("product", stage!("product", "stock_exchange")),
        may_not("product", "SELECT count(*) FROM orders"),
        may_not("product", "UPDATE orders SET status = 'confirmed'"),
        // Row-level security: product may not stage an event for order's relay.
        may_not("product", stage!("order", "order_exchange")),
        may_not("product", "DELETE FROM products"),
        may_not("product", "TRUNCATE processed_events"),
        may("notification", "SELECT count(*) FROM sent_emails"),
        may_not("notification", "SELECT count(*) FROM orders"),
        may_not("notification", "SELECT count(*) FROM outbox"),
        may_not("notification", stage!("notification", "order_exchange")),
        may_not("notification", "UPDATE products SET stock = 0"),
        may_not("notification", "DELETE FROM seaql_migrations"),
    ];

    for attempt in attempts {
        // Act
        let db = Database::connect(database.url_as(attempt.service))
            .await
            .unwrap();
        let outcome = db.execute_unprepared(attempt.sql).await;
        db.close().await.ok();

        // Assert
        let (service, sql) = (attempt.service, attempt.sql);
        match outcome {
            Ok(_) => assert!(attempt.allowed, "{service} may: {sql}"),
            Err(e) => {
                assert!(!attempt.allowed, "{service} was refused {sql}: {e}");
                let text = e.to_string();
                assert!(
                    ["permission denied", "row-level security", "must be owner"]
                        .iter()
                        .any(|reason| text.contains(reason)),
                    "{service}: {sql}: refused for another reason: {text}"
                );
            }
        }
    }
    // The owner sees the one row each service staged, under its own name.
    assert_eq!(
        database
            .count("SELECT count(*) FROM outbox WHERE source = 'order' OR source = 'product'")
            .await,
        2
    );
}

/// The AMQP reply code a refused operation ended with, if it was refused.
fn reply_code(outcome: lapin::Result<()>) -> Option<u16> {
    match outcome {
        Ok(()) => None,
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
            _ => panic!("failed for another reason than a refusal: {e}"),
        },
    }
}

/// Publishes one message with confirms on a channel of its own.
async fn publish(connection: &Connection, exchange: &str, routing_key: &str) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await?
        .await?;
    // A refusal closes the channel: the next call on it says so.
    channel.basic_qos(1, Default::default()).await?;
    Ok(())
}

async fn consume(connection: &Connection, queue: &str) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .basic_consume(
            queue.into(),
            "least-privilege-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn declare(connection: &Connection, queue: &str) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn delete(connection: &Connection, queue: &str) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn each_service_user_is_refused_beyond_its_own_exchanges_and_queues() {
    // Arrange: a vhost as the `topology` command leaves it.
    let vhost = TestVhost::create().unwrap();
    let connect = |service: &str| {
        let url = vhost.amqp_url_as(service);
        async move {
            Connection::connect(&url, ConnectionProperties::default())
                .await
                .unwrap()
        }
    };
    let (order, product, notification) = (
        connect("order").await,
        connect("product").await,
        connect("notification").await,
    );
    const REFUSED: Option<u16> = Some(403);

    // Act and Assert: what each may do...
    assert_eq!(
        reply_code(publish(&order, "order_exchange", "").await),
        None
    );
    assert_eq!(
        reply_code(consume(&order, "order.stock_events").await),
        None
    );
    assert_eq!(
        reply_code(publish(&product, "stock_exchange", "").await),
        None
    );
    assert_eq!(
        reply_code(publish(&product, "product.park", "product.order_created").await),
        None
    );
    assert_eq!(
        reply_code(consume(&notification, "notification.order_created").await),
        None
    );
    // ...and what none may: forge another service's events, read another's
    // queue, reach any queue through the default exchange, declare or
    // delete anything.
    let refusals = [
        ("order", publish(&order, "stock_exchange", "").await),
        ("order", consume(&order, "product.order_created").await),
        (
            "order",
            publish(&order, "", "notification.stock_events").await,
        ),
        (
            "order",
            publish(&order, "product.park", "product.order_created").await,
        ),
        ("product", publish(&product, "order_exchange", "").await),
        (
            "product",
            consume(&product, "notification.order_created").await,
        ),
        ("product", declare(&product, "rogue").await),
        ("product", delete(&product, "product.order_created").await),
        (
            "notification",
            publish(&notification, "order_exchange", "").await,
        ),
        (
            "notification",
            publish(&notification, "stock_exchange", "").await,
        ),
        (
            "notification",
            consume(&notification, "order.stock_events").await,
        ),
        (
            "notification",
            delete(&notification, "notification.dead").await,
        ),
    ];
    for (n, (service, outcome)) in refusals.into_iter().enumerate() {
        assert_eq!(reply_code(outcome), REFUSED, "{service}, attempt {n}");
    }
}

/// A service binary with its own ports and log directory, not started.
fn service(name: &str, env: Vec<(&'static str, String)>) -> ServiceProcess {
    let mut env = env;
    env.push(("HTTP_ADDR", format!("127.0.0.1:{}", free_port())));
    env.push(("ADMIN_ADDR", format!("127.0.0.1:{}", free_port())));
    env.push(("ORDER_RATE_LIMIT", "off".into()));
    ServiceProcess::prepare(name, &env, &log_dir())
}

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ecommerce-privilege-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `process` and waits until it exits by itself; its exit code.
fn exit_of(process: &mut ServiceProcess) -> Option<i32> {
    process.restart();
    wait_until(STARTUP, &format!("{} to exit", process.name()), || {
        (!process.is_running()).then_some(())
    });
    process.reap()
}

#[test]
fn a_service_whose_account_lacks_a_permission_it_needs_exits_at_startup_naming_it() {
    // Arrange: a database and a vhost set up as usual, and one user whose
    // permissions on the vhost leave out reading its queues.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = rt.block_on(TestDatabase::migrated()).unwrap();
    let vhost = TestVhost::create().unwrap();
    let api = testkit::broker::management_api();
    let unwritable = TestVhost::create().unwrap();
    api.set_permissions(
        unwritable.name(),
        &user_of("product"),
        &Permissions {
            write: "^$".into(),
            ..Needs::of("product").permissions()
        },
    )
    .unwrap();
    let unreadable = TestVhost::create().unwrap();
    api.set_permissions(
        unreadable.name(),
        &user_of("notification"),
        &Permissions {
            read: "^$".into(),
            ..Needs::of("notification").permissions()
        },
    )
    .unwrap();
    let cases = [
        (
            "order with product's database role",
            service(
                "order",
                vec![
                    ("DATABASE_URL", database.url_as("product")),
                    ("AMQP_URL", vhost.amqp_url_as("order")),
                ],
            ),
            "the database role lacks SELECT on orders",
        ),
        (
            "product with a user that may not publish",
            service(
                "product",
                vec![
                    ("DATABASE_URL", database.url_as("product")),
                    ("AMQP_URL", unwritable.amqp_url_as("product")),
                ],
            ),
            "the broker refuses ecommerce_product publishing to exchange stock_exchange",
        ),
        (
            "notification with a user that may not read its queues",
            service(
                "notification",
                vec![
                    ("DATABASE_URL", database.url_as("notification")),
                    ("AMQP_URL", unreadable.amqp_url_as("notification")),
                ],
            ),
            "the broker refuses ecommerce_notification reading queue notification.",
        ),
    ];

    for (case, mut process, expected) in cases {
        // Act
        let started = Instant::now();
        let code = exit_of(&mut process);

        // Assert
        let log = process.log();
        assert_eq!(code, Some(1), "{case}: {log}");
        assert!(log.contains(expected), "{case}: {log}");
        assert!(!log.contains("-dev@"), "{case}: the log shows a password");
        eprintln!(
            "least privilege: {case}: exit code 1 after {} ms",
            started.elapsed().as_millis()
        );
    }
}

#[test]
fn services_wait_for_the_topology_which_the_topology_command_declares_with_their_users() {
    // Arrange: a vhost with nothing in it, where product's user may do what
    // it needs but nothing exists yet; product started on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = rt.block_on(TestDatabase::migrated()).unwrap();
    rt.block_on(async {
        let db = database.connect().await;
        db.execute_unprepared("INSERT INTO products (id, name, stock) VALUES ('p1', 'Lamp', 5)")
            .await
            .unwrap();
        db.close().await.ok();
    });
    let vhost = TestVhost::empty().unwrap();
    let api = testkit::broker::management_api();
    api.set_permissions(
        vhost.name(),
        &user_of("product"),
        &Needs::of("product").permissions(),
    )
    .unwrap();
    let mut product = service(
        "product",
        vec![
            ("DATABASE_URL", database.url_as("product")),
            ("AMQP_URL", vhost.amqp_url_as("product")),
        ],
    );
    product.restart();
    wait_until(STARTUP, "product to wait for the topology", || {
        product
            .log()
            .contains("waiting for the broker topology")
            .then_some(())
    });

    // Act: the setup step, with the broker's administrator account.
    let topology = Command::new(testkit::binary("topology"))
        .env("AMQP_URL", vhost.amqp_url())
        .env("AMQP_DELIVERY_LIMIT", "7")
        .env(
            "RABBITMQ_MANAGEMENT_URL",
            std::env::var("TEST_RABBITMQ_API")
                .map(|api| api.trim_end_matches("/api").to_string())
                .unwrap_or_else(|_| "http://127.0.0.1:15672".into()),
        )
        .env(
            "PRODUCT_AMQP_PASSWORD",
            testkit::service_password("product"),
        )
        .env(
            "NOTIFICATION_AMQP_PASSWORD",
            testkit::service_password("notification"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();

    // Assert: declared, users set up, and product consumes and applies an order.
    let said = String::from_utf8_lossy(&topology.stdout).into_owned()
        + &String::from_utf8_lossy(&topology.stderr);
    assert!(topology.status.success(), "{said}");
    assert!(said.contains("topology declared"), "{said}");
    assert!(said.contains("ecommerce_notification"), "{said}");
    let broker = rt
        .block_on(BrokerClient::connect(vhost.amqp_url()))
        .unwrap();
    rt.block_on(broker.wait_for_consumer("product.order_created", STARTUP));
    let order = OrderCreated::new("p1".into(), 2);
    rt.block_on(broker.publish(
        "order_exchange",
        &serde_json::to_vec(&order).unwrap(),
        Some(&order.event_id.to_string()),
    ))
    .unwrap();
    wait_until(STARTUP, "product to apply the order", || {
        let stock =
            rt.block_on(database.count("SELECT stock::bigint FROM products WHERE id = 'p1'"));
        (stock == 3).then_some(())
    });
    let granted = api
        .json(
            "GET",
            &format!("/permissions/{}/ecommerce_notification", vhost.name()),
            None,
        )
        .unwrap();
    assert_eq!(granted["configure"], "^$");
    assert_eq!(
        granted["read"],
        Needs::of("notification").permissions().read
    );
}
