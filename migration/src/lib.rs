//! The database schema, as SeaORM migrations. `Migrator` serves the
//! `migration` binary and `sea-orm-cli migrate`, which apply them
//! ([`migrate`]); services never migrate, they wait until
//! [`schema_state`] finds every migration they know applied.

use std::collections::BTreeSet;

pub use sea_orm_migration::prelude::*;

pub mod access;
pub mod tls;
use sea_orm_migration::sea_orm::{ConnectOptions, DatabaseConnection, Statement, TransactionTrait};

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

/// Applies pending migrations, all in one transaction: a migration that
/// fails leaves the schema as it was. Safe when several migrators run at
/// once (two Jobs, a Job and a developer): a transaction-scoped advisory
/// lock lets one migrate while the others wait, and they then find nothing
/// left to do. The services' grants ([`access::grant`]) are applied in the
/// same transaction: a schema a service finds current has its grants too.
pub async fn migrate(db: &DatabaseConnection) -> Result<access::Granted, DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    Migrator::up(&txn, None).await?;
    let granted = access::grant(&txn).await?;
    txn.commit().await?;
    Ok(granted)
}

/// The options of a session that migrates: none of the limits the services
/// set on theirs (a migration may wait for a lock or run long), and none
/// that the role or database may set by default either.
pub fn unlimited(mut options: ConnectOptions) -> ConnectOptions {
    let tls = tls::tls_only_when_asked(options.get_url());
    options.map_sqlx_postgres_opts(move |options| {
        tls(options).options([
            ("statement_timeout", "0"),
            ("lock_timeout", "0"),
            ("idle_in_transaction_session_timeout", "0"),
        ])
    });
    options
}

/// How the database's schema compares with the migrations this build knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// Migrations this build knows that the database has not applied.
    pub pending: Vec<String>,
    /// Migrations the database has applied that this build does not know:
    /// a newer release migrated already (during a rolling upgrade, say).
    pub unknown: Vec<String>,
}

impl SchemaState {
    /// Whether a service of this build can work on the schema: every
    /// migration it knows is applied. Newer ones may be too, as during a
    /// rolling upgrade: a migration adds what older code ignores, and what
    /// it removes goes in a later release than the code that stops using it.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }

    /// What a service waits for, in the words of its log and `/ready`.
    pub fn missing(&self) -> String {
        let count = self.pending.len();
        format!(
            "{count} migration{} not applied (run `migration up`)",
            if count == 1 { "" } else { "s" }
        )
    }

    fn compare(known: &[String], applied: &BTreeSet<String>) -> Self {
        let known_set: BTreeSet<&String> = known.iter().collect();
        Self {
            pending: known
                .iter()
                .filter(|name| !applied.contains(*name))
                .cloned()
                .collect(),
            unknown: applied
                .iter()
                .filter(|name| !known_set.contains(name))
                .cloned()
                .collect(),
        }
    }
}

/// Reads which migrations the database has applied (SeaORM's
/// `seaql_migrations`), without creating or changing anything.
pub async fn schema_state<C: ConnectionTrait>(db: &C) -> Result<SchemaState, DbErr> {
    let backend = db.get_database_backend();
    let installed = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT to_regclass('seaql_migrations') IS NOT NULL",
        ))
        .await?
        .map(|row| row.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false);
    let mut applied = BTreeSet::new();
    if installed {
        for row in db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT version FROM seaql_migrations",
            ))
            .await?
        {
            applied.insert(row.try_get_by_index::<String>(0)?);
        }
    }
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_string())
        .collect();
    Ok(SchemaState::compare(&known, &applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().copied().map(String::from).collect()
    }

    #[test]
    fn pending_are_the_known_migrations_not_applied_in_their_order() {
        let known = names(&["m1", "m2", "m3"]);
        let applied = BTreeSet::from(["m1".to_string()]);

        let state = SchemaState::compare(&known, &applied);

        assert_eq!(state.pending, names(&["m2", "m3"]));
        assert_eq!(
            state.missing(),
            "2 migrations not applied (run `migration up`)"
        );
        assert!(state.unknown.is_empty());
        assert!(!state.is_current());
    }

    #[test]
    fn a_schema_ahead_of_the_build_is_current_and_names_what_it_does_not_know() {
        let known = names(&["m1", "m2"]);
        let applied = BTreeSet::from(["m1", "m2", "m3"].map(String::from));

        let state = SchemaState::compare(&known, &applied);

        assert!(state.is_current());
        assert_eq!(state.unknown, names(&["m3"]));
    }
}
