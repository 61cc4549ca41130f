//! `migration up`, as the Kubernetes migration Job runs it, takes the lock
//! the services take to migrate at startup: a Job beside replicas starting
//! at the same time applies each migration once.

use std::time::Duration;

use migration::MigratorTrait as _;
use migration::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use testkit::{TestDatabase, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn migration_up_waits_for_a_migration_under_way_then_finds_its_work_done() {
    // Arrange: an empty database where someone holds the migration lock,
    // as a replica that is migrating does.
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    let holder = db.begin().await.unwrap();
    holder
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT pg_advisory_xact_lock($1)",
            [migration::MIGRATION_LOCK_KEY.into()],
        ))
        .await
        .unwrap();

    // Act: `migration up` starts meanwhile; the holder then migrates and
    // lets go.
    let mut job = std::process::Command::new(env!("CARGO_BIN_EXE_migration"))
        .arg("up")
        .env("DATABASE_URL", database.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting migration up");
    eventually(WAIT, "migration up to wait for the lock", || async {
        let waiting = database
            .count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            .await;
        (waiting == 1).then_some(())
    })
    .await;
    assert!(job.try_wait().unwrap().is_none(), "it waits, not done");
    migration::Migrator::up(&holder, None).await.unwrap();
    holder.commit().await.unwrap();
    let finished = tokio::task::spawn_blocking(move || job.wait_with_output().unwrap())
        .await
        .unwrap();

    // Assert: it succeeded, and each migration was applied once.
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(
        database
            .count("SELECT count(*) FROM seaql_migrations")
            .await,
        migration::Migrator::migrations().len() as i64
    );
}
