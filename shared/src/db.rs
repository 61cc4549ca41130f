//! PostgreSQL connections through SeaORM.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use slog::{Logger, info};

use crate::config::redact_url;
use crate::retry::until_ok;

/// Connects, retrying with backoff until PostgreSQL answers.
pub async fn connect(url: &str, log: &Logger) -> DatabaseConnection {
    let log = log.new(slog::o!("database_url" => redact_url(url)));
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(10)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let db = until_ok(&log, "connecting to PostgreSQL", || {
        Database::connect(options.clone())
    })
    .await;
    info!(log, "connected to PostgreSQL");
    db
}
