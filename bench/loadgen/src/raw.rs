//! `raw`: what PostgreSQL and RabbitMQ can do on this machine, through the
//! same client libraries as the services (SeaORM/sqlx, lapin), in scratch
//! places created for the run and removed after it: a database for
//! PostgreSQL, a vhost for RabbitMQ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::management::Management;
use crate::progress::{Meter, Sample, Ticker, stop_requested};
use crate::stats::{self, LatencySummary};
use crate::urls::{credentials, redact, with_database, with_vhost};

#[derive(Debug, Clone)]
pub struct RawConfig {
    /// Concurrent one-row transactions (as many as the intake clients).
    pub concurrency: u32,
    /// Concurrent batched transactions.
    pub batch_concurrency: u32,
    pub batch_rows: u32,
    /// Duration of each of the four measurements.
    pub seconds: u64,
    /// Publishes awaiting their confirm; also the consumer's prefetch.
    pub amqp_window: u16,
}

/// One measured rate.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Operations in flight at once.
    pub concurrency: u32,
    /// Connections they share (PostgreSQL: fewer than `concurrency` only
    /// when the server has no room for more).
    pub connections: u32,
    pub elapsed_s: f64,
    /// Commits, confirmed publishes, or acknowledged deliveries.
    pub operations: u64,
    pub per_s: f64,
    pub rows_per_operation: u32,
    pub rows_per_s: f64,
    pub errors: u64,
    /// Of one operation (a commit, a publish until its confirm).
    pub latency: LatencySummary,
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresRaw {
    pub version: String,
    /// One-row INSERT, each its own transaction.
    pub single: Throughput,
    /// `batch_rows`-row INSERT, each its own transaction.
    pub batched: Throughput,
}

#[derive(Debug, Clone, Serialize)]
pub struct RabbitRaw {
    pub version: String,
    /// Bytes of each message: an `OrderCreated` event.
    pub message_bytes: usize,
    pub window: u16,
    /// Persistent publishes to a quorum queue, confirmed by the broker.
    pub publish: Throughput,
    /// Consumed from that queue and acknowledged one by one.
    pub consume: Throughput,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawReport {
    pub postgres: PostgresRaw,
    pub rabbitmq: RabbitRaw,
}

pub fn run(
    rt: &Runtime,
    database_url: &str,
    amqp_url: &str,
    management: &Management,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<RawReport> {
    let postgres = rt.block_on(postgres(database_url, config, quiet))?;
    let rabbitmq = rabbitmq(rt, amqp_url, management, config, quiet)?;
    Ok(RawReport { postgres, rabbitmq })
}

// --- PostgreSQL --------------------------------------------------------------

/// Shaped like an order row.
const SCRATCH_TABLE: &str = "CREATE TABLE scratch (
    id uuid PRIMARY KEY,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)";

async fn postgres(
    database_url: &str,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<PostgresRaw> {
    let admin = crate::db::connect(database_url, 1).await?;
    let version = crate::db::server_version(&admin).await?;
    let name = format!("loadgen_scratch_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating the scratch database {name}"))?;
    let measured = async {
        let url = with_database(database_url, &name)?;
        let wanted = config.concurrency.max(config.batch_concurrency);
        let pool_size = pool_size(wanted, free_connections(&admin).await?);
        if pool_size < wanted {
            eprintln!(
                "warning: PostgreSQL has room for {pool_size} more connections only (max_connections \
                 less those open, less 5): {wanted} tasks share {pool_size} connections"
            );
        }
        let db = crate::db::connect(&url, pool_size).await?;
        db.execute_unprepared(SCRATCH_TABLE).await?;
        let single = commits(&db, config.concurrency, pool_size, 1, config.seconds, quiet).await;
        let batched = match single {
            Ok(_) => {
                commits(
                    &db,
                    config.batch_concurrency,
                    pool_size,
                    config.batch_rows,
                    config.seconds,
                    quiet,
                )
                .await
            }
            Err(_) => Err(anyhow!("skipped")),
        };
        db.close().await.ok();
        Ok::<_, anyhow::Error>((single?, batched?))
    }
    .await;
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    admin.close().await.ok();
    let (single, batched) = measured?;
    if let Err(e) = dropped {
        eprintln!("warning: could not drop the scratch database {name}: {e}");
    }
    Ok(PostgresRaw {
        version,
        single,
        batched,
    })
}

/// Connections the server can still take.
async fn free_connections(admin: &DatabaseConnection) -> anyhow::Result<i64> {
    let row = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('max_connections')::int8 - (SELECT count(*) FROM pg_stat_activity)",
        ))
        .await?
        .context("counting free connections returned no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// The scratch pool: as many connections as tasks, if the server has room
/// for them and 5 more; never none.
pub fn pool_size(wanted: u32, free: i64) -> u32 {
    let room = u32::try_from((free - 5).max(1)).unwrap_or(u32::MAX);
    wanted.min(room)
}

fn insert(rows: u32) -> String {
    let values: Vec<String> = (1..=rows)
        .map(|i| format!("(${i}, 'bench', 1, 'pending')"))
        .collect();
    format!(
        "INSERT INTO scratch (id, product_id, quantity, status) VALUES {}",
        values.join(", ")
    )
}

/// `concurrency` tasks committing `rows`-row INSERTs for `seconds`, on at
/// most `connections` connections.
async fn commits(
    db: &DatabaseConnection,
    concurrency: u32,
    connections: u32,
    rows: u32,
    seconds: u64,
    quiet: bool,
) -> anyhow::Result<Throughput> {
    // Open every connection before the clock starts.
    let warm: Vec<_> = (0..concurrency)
        .map(|_| db.execute_unprepared("SELECT pg_sleep(0.05)"))
        .collect();
    futures_util::future::try_join_all(warm).await?;

    let label = if rows == 1 {
        "raw postgres 1-row".to_string()
    } else {
        format!("raw postgres {rows}-row")
    };
    let meter = Meter::new();
    let ticker = Ticker::start(&label, "commits", meter.clone(), quiet, |_, _| None);
    let sql = Arc::new(insert(rows));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (db, sql, meter) = (db.clone(), sql.clone(), meter.clone());
            tokio::spawn(async move {
                let mut histogram = stats::new_histogram();
                let mut first_error = None;
                while Instant::now() < deadline && !stop_requested() {
                    let values = (0..rows).map(|_| Uuid::now_v7().into());
                    let statement =
                        Statement::from_sql_and_values(DbBackend::Postgres, sql.as_str(), values);
                    let begun = Instant::now();
                    match db.execute_raw(statement).await {
                        Ok(_) => {
                            stats::record(&mut histogram, begun.elapsed());
                            meter.done(1);
                        }
                        Err(e) => {
                            meter.error();
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                (histogram, first_error)
            })
        })
        .collect();
    let mut histogram = stats::new_histogram();
    let mut first_error = None;
    for task in tasks {
        let (h, e) = task.await.context("a PostgreSQL task panicked")?;
        stats::merge(&mut histogram, &h);
        first_error = first_error.or(e);
    }
    let elapsed = start.elapsed();
    let timeline = ticker.finish();
    let (_, errors) = meter.totals();
    throughput(
        (concurrency, connections.min(concurrency)),
        rows,
        elapsed,
        &histogram,
        errors,
        timeline,
        first_error,
    )
}

fn throughput(
    (concurrency, connections): (u32, u32),
    rows: u32,
    elapsed: Duration,
    histogram: &Histogram<u64>,
    errors: u64,
    timeline: Vec<Sample>,
    first_error: Option<String>,
) -> anyhow::Result<Throughput> {
    let operations = histogram.len();
    if operations == 0 {
        bail!(
            "not one operation succeeded{}",
            first_error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    if let Some(e) = first_error {
        eprintln!("warning: {errors} operations failed, the first with: {e}");
    }
    let per_s = operations as f64 / elapsed.as_secs_f64();
    Ok(Throughput {
        concurrency,
        connections,
        elapsed_s: elapsed.as_secs_f64(),
        operations,
        per_s,
        rows_per_operation: rows,
        rows_per_s: per_s * f64::from(rows),
        errors,
        latency: LatencySummary::of(histogram),
        timeline,
    })
}

// --- RabbitMQ ----------------------------------------------------------------

const QUEUE: &str = "loadgen.scratch";

fn rabbitmq(
    rt: &Runtime,
    amqp_url: &str,
    management: &Management,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<RabbitRaw> {
    let version = management.version()?;
    let (user, _) = credentials(amqp_url)?;
    let vhost = format!("loadgen-scratch-{}", Uuid::new_v4().simple());
    management
        .create_vhost(&vhost, &user)
        .with_context(|| format!("creating the scratch vhost {vhost}"))?;
    let measured =
        with_vhost(amqp_url, &vhost).and_then(|url| rt.block_on(broker(&url, config, quiet)));
    if let Err(e) = management.delete_vhost(&vhost) {
        eprintln!("warning: could not delete the scratch vhost {vhost}: {e:#}");
    }
    let (message_bytes, publish, consume) = measured?;
    Ok(RabbitRaw {
        version,
        message_bytes,
        window: config.amqp_window,
        publish,
        consume,
    })
}

/// The body of an `OrderCreated` as the order service publishes it.
pub fn order_created_body() -> Vec<u8> {
    let event = shared::events::OrderCreated::new("bench".to_string(), 1);
    serde_json::to_vec(&event).expect("an event serializes")
}

async fn broker(
    url: &str,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<(usize, Throughput, Throughput)> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .with_context(|| {
            format!(
                "RabbitMQ is not reachable at {} (start it, or pass --amqp-url)",
                redact(url)
            )
        })?;
    let body = order_created_body();
    let result = async {
        let publish = publish(&connection, &body, config, quiet).await?;
        let consume = consume(&connection, publish.operations, config, quiet).await?;
        Ok::<_, anyhow::Error>((body.len(), publish, consume))
    }
    .await;
    let _ = connection.close(200, "done".into()).await;
    result
}

async fn publish(
    connection: &Connection,
    body: &[u8],
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<Throughput> {
    let channel = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(QUEUE.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .context("declaring the scratch quorum queue")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let meter = Meter::new();
    let ticker = Ticker::start(
        "raw rabbitmq publish",
        "confirmed",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    let window = usize::from(config.amqp_window);
    let mut histogram = stats::new_histogram();
    let mut in_flight = FuturesUnordered::new();
    let (mut nacked, mut first_error) = (0u64, None);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(config.seconds);
    loop {
        let publishing = Instant::now() < deadline && !stop_requested();
        while publishing && in_flight.len() < window {
            let properties = BasicProperties::default()
                .with_content_type(shared::events::JSON_CONTENT_TYPE.into())
                .with_delivery_mode(2)
                .with_message_id(Uuid::new_v4().to_string().into());
            let confirm = channel
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await?;
            let sent = Instant::now();
            in_flight.push(async move { (confirm.await, sent) });
        }
        meter.set_backlog(in_flight.len() as u64);
        match in_flight.next().await {
            Some((Ok(confirmation), sent)) if confirmation.is_ack() => {
                stats::record(&mut histogram, sent.elapsed());
                meter.done(1);
            }
            Some((Ok(_), _)) => {
                nacked += 1;
                meter.error();
            }
            Some((Err(e), _)) => {
                meter.error();
                first_error.get_or_insert(e.to_string());
                nacked += 1;
            }
            None => break,
        }
    }
    let elapsed = start.elapsed();
    let timeline = ticker.finish();
    let _ = channel.close(200, "done".into()).await;
    throughput(
        (u32::from(config.amqp_window), 1),
        1,
        elapsed,
        &histogram,
        nacked,
        timeline,
        first_error,
    )
}

async fn consume(
    connection: &Connection,
    expected: u64,
    config: &RawConfig,
    quiet: bool,
) -> anyhow::Result<Throughput> {
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.amqp_window, BasicQosOptions::default())
        .await?;
    let meter = Meter::new();
    let ticker = Ticker::start(
        "raw rabbitmq consume",
        "acked",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    let start = Instant::now();
    let mut consumer = channel
        .basic_consume(
            QUEUE.into(),
            "loadgen".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut histogram = stats::new_histogram();
    let mut acked = 0u64;
    let mut last = Instant::now();
    while acked < expected && !stop_requested() {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| anyhow!("no delivery for 30 s after {acked} of {expected}"))?
            .context("the consumer closed")??;
        delivery.ack(BasicAckOptions::default()).await?;
        let now = Instant::now();
        // Time between acknowledgements: the consumer's cost per message.
        stats::record(&mut histogram, now - last);
        last = now;
        acked += 1;
        meter.done(1);
        meter.set_backlog(expected - acked);
    }
    let elapsed = start.elapsed();
    let timeline = ticker.finish();
    let _ = channel.close(200, "done".into()).await;
    throughput(
        (u32::from(config.amqp_window), 1),
        1,
        elapsed,
        &histogram,
        0,
        timeline,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_insert_has_one_placeholder_per_row() {
        assert_eq!(
            insert(2),
            "INSERT INTO scratch (id, product_id, quantity, status) VALUES \
             ($1, 'bench', 1, 'pending'), ($2, 'bench', 1, 'pending')"
        );
        assert_eq!(insert(100).matches("'pending'").count(), 100);
    }

    #[test]
    fn the_pool_leaves_room_for_others() {
        assert_eq!(pool_size(64, 100), 64);
        assert_eq!(pool_size(64, 40), 35);
        assert_eq!(pool_size(64, 2), 1);
    }

    #[test]
    fn the_message_is_an_order_created_event() {
        let body = order_created_body();
        let event: shared::events::OrderCreated = serde_json::from_slice(&body).unwrap();
        assert_eq!(event.product_id, "bench");
        assert!(body.len() > 100, "{} bytes", body.len());
    }
}
