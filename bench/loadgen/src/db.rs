//! The SQL loadgen runs against the services' database: products present,
//! orders still pending, the orders' timestamps, work still in flight.

use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use uuid::Uuid;

use crate::urls::redact;

/// Ids per query: a JSON array of this many UUIDs is about 400 KB.
const CHUNK: usize = 10_000;

/// A pool of `connections` to `database_url`, tried once, with a clear error.
pub async fn connect(database_url: &str, connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(database_url);
    options
        .max_connections(connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let db = Database::connect(options).await.with_context(|| {
        format!(
            "PostgreSQL is not reachable at {} (start it, or pass --database-url)",
            redact(database_url)
        )
    })?;
    db.execute_unprepared("SELECT 1")
        .await
        .with_context(|| format!("PostgreSQL at {} does not answer", redact(database_url)))?;
    Ok(db)
}

fn statement(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

pub async fn server_version(db: &DatabaseConnection) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(statement("SHOW server_version", []))
        .await?
        .context("SHOW server_version returned nothing")?;
    Ok(row.try_get_by_index::<String>(0)?)
}

/// Fails, naming what is missing, unless every product exists.
pub async fn check_products(db: &DatabaseConnection, products: &[String]) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for chunk in products.chunks(CHUNK) {
        let rows = db
            .query_all_raw(statement(
                "SELECT p FROM jsonb_array_elements_text($1::jsonb) AS p \
                 WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = p)",
                [serde_json::to_string(chunk)?.into()],
            ))
            .await
            .context("looking up the products to order (is this the services' database?)")?;
        for row in rows {
            missing.push(row.try_get_by_index::<String>(0)?);
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} of the {} products to order do not exist (first: {:?}): insert them with enough \
             stock first (bench/run.sh inserts `bench` and `bench-1`..`bench-1000`)",
            missing.len(),
            products.len(),
            missing[0]
        );
    }
    Ok(())
}

/// Those of `ids` whose order is still `pending` (or not stored at all).
pub async fn still_pending(db: &DatabaseConnection, ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    let mut pending = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let rows = db
            .query_all_raw(statement(
                "SELECT i::uuid FROM jsonb_array_elements_text($1::jsonb) AS i \
                 WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i::uuid AND o.status <> 'pending')",
                [serde_json::to_string(chunk)?.into()],
            ))
            .await
            .context("polling the orders' status")?;
        for row in rows {
            pending.push(row.try_get_by_index::<Uuid>(0)?);
        }
    }
    Ok(pending)
}

/// One order's status and timestamps (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTimes {
    pub status: String,
    pub created_at: f64,
    pub updated_at: f64,
}

pub async fn order_times(db: &DatabaseConnection, ids: &[Uuid]) -> anyhow::Result<Vec<OrderTimes>> {
    let mut times = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = db
            .query_all_raw(statement(
                "SELECT status, extract(epoch FROM created_at)::float8, \
                        extract(epoch FROM updated_at)::float8 \
                 FROM orders WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)",
                [serde_json::to_string(chunk)?.into()],
            ))
            .await
            .context("reading the orders' timestamps")?;
        for row in rows {
            times.push(OrderTimes {
                status: row.try_get_by_index(0)?,
                created_at: row.try_get_by_index(1)?,
                updated_at: row.try_get_by_index(2)?,
            });
        }
    }
    Ok(times)
}

/// The orders created from `from` to `to` (seconds since the epoch): those
/// of one intake phase, which runs alone.
pub async fn order_times_created_between(
    db: &DatabaseConnection,
    from: f64,
    to: f64,
) -> anyhow::Result<Vec<OrderTimes>> {
    let rows = db
        .query_all_raw(statement(
            "SELECT status, extract(epoch FROM created_at)::float8, \
                    extract(epoch FROM updated_at)::float8 \
             FROM orders WHERE created_at BETWEEN to_timestamp($1) AND to_timestamp($2)",
            [from.into(), to.into()],
        ))
        .await
        .context("reading the orders' timestamps")?;
    rows.into_iter()
        .map(|row| {
            Ok(OrderTimes {
                status: row.try_get_by_index(0)?,
                created_at: row.try_get_by_index(1)?,
                updated_at: row.try_get_by_index(2)?,
            })
        })
        .collect()
}

/// Work the services still have in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub orders: i64,
    /// Outbox rows (either service) not yet published.
    pub outbox: i64,
    /// Emails recorded and not yet marked sent.
    pub emails_unsent: i64,
    /// Every email recorded: it grows while notification works through its queue.
    pub emails: i64,
}

impl Pending {
    pub fn backlog(&self) -> u64 {
        (self.orders + self.outbox + self.emails_unsent).max(0) as u64
    }
}

pub async fn pending_work(db: &DatabaseConnection) -> anyhow::Result<Pending> {
    let row = db
        .query_one_raw(statement(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'pending'), \
                    (SELECT count(*) FROM outbox WHERE published_at IS NULL), \
                    (SELECT count(*) FROM sent_emails WHERE sent_at IS NULL), \
                    (SELECT count(*) FROM sent_emails)",
            [],
        ))
        .await
        .context("counting the services' pending work (orders, outbox, sent_emails)")?
        .context("the count returned no row")?;
    Ok(Pending {
        orders: row.try_get_by_index(0)?,
        outbox: row.try_get_by_index(1)?,
        emails_unsent: row.try_get_by_index(2)?,
        emails: row.try_get_by_index(3)?,
    })
}
