//! The database schema, as SeaORM migrations. `Migrator` serves the
//! `migration` binary and `sea-orm-cli migrate`; services call [`migrate`].

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseConnection, Statement, TransactionTrait};

mod m20251125_000001_create_products;
mod m20251125_000002_create_processed_events;
mod m20251125_000003_create_orders_and_outbox;
mod m20251125_000004_create_sent_emails;
mod m20251125_000005_order_lifecycle;
mod m20251126_000006_reliable_delivery;
mod m20251126_000007_group_commit;
mod m20261126_000008_request_ids;
mod m20261202_000009_heartbeats;
mod m20261202_000010_email_senders;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20251125_000001_create_products::Migration),
            Box::new(m20251125_000002_create_processed_events::Migration),
            Box::new(m20251125_000003_create_orders_and_outbox::Migration),
            Box::new(m20251125_000004_create_sent_emails::Migration),
            Box::new(m20251125_000005_order_lifecycle::Migration),
            Box::new(m20251126_000006_reliable_delivery::Migration),
            Box::new(m20251126_000007_group_commit::Migration),
            Box::new(m20261126_000008_request_ids::Migration),
            Box::new(m20261202_000009_heartbeats::Migration),
            Box::new(m20261202_000010_email_senders::Migration),
        ]
    }
}

/// Arbitrary but fixed key of the advisory lock that serializes migrations.
pub const MIGRATION_LOCK_KEY: i64 = 0x0e_c0_5e_ed;

/// Applies pending migrations. Safe when several replicas start at once: a
/// transaction-scoped advisory lock lets one migrate while the others wait,
/// and they then find nothing left to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}
