//! PostgreSQL: commits per second of order-shaped INSERTs, one row or a
//! batch per transaction, in a scratch database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::progress::{Meter, Ticker, stop_requested};
use crate::stats::{self};
use crate::urls::with_database;

use super::{PostgresRaw, RawConfig, Throughput, throughput};

/// Shaped like an order row.
const SCRATCH_TABLE: &str = "CREATE TABLE scratch (
    id uuid PRIMARY KEY,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)";

pub(super) async fn postgres(
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
}
