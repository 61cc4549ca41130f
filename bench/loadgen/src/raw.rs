//! `raw`: what PostgreSQL and RabbitMQ can do on this machine, through the
//! same client libraries as the services (SeaORM/sqlx, lapin), in scratch
//! places created for the run and removed after it: a database for
//! PostgreSQL, a vhost for RabbitMQ.

mod postgres;
mod rabbitmq;

use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::management::Management;
use crate::progress::Sample;
use crate::stats::LatencySummary;

use postgres::postgres;
pub use rabbitmq::order_created_body;
use rabbitmq::rabbitmq;

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
