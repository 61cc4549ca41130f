//! `migration up`, as the Kubernetes migration Job runs it, takes the lock
//! the services take to migrate at startup: a Job beside replicas starting
//! at the same time applies each migration once.

use migration::MigratorTrait as _;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use system_tests::STARTUP;
use testkit::{TestDatabase, binary, wait_until};

#[test]
fn migration_up_waits_for_a_migration_under_way_then_finds_its_work_done() {
    // Arrange: an empty database where someone holds the migration lock,
    // as a replica that is migrating does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = rt.block_on(TestDatabase::create()).unwrap();
    let db = rt.block_on(database.connect());
    let holder = rt.block_on(db.begin()).unwrap();
    rt.block_on(holder.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [migration::MIGRATION_LOCK_KEY.into()],
    )))
    .unwrap();

    // Act: `migration up` starts meanwhile; the holder then migrates and
    // lets go.
    let mut job = std::process::Command::new(binary("migration"))
        .arg("up")
        .env("DATABASE_URL", database.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting migration up");
    wait_until(STARTUP, "migration up to wait for the lock", || {
        let waiting = rt
            .block_on(database.count(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            ));
        (waiting == 1).then_some(())
    });
    assert!(job.try_wait().unwrap().is_none(), "it waits, not done");
    rt.block_on(migration::Migrator::up(&holder, None)).unwrap();
    rt.block_on(holder.commit()).unwrap();
    let finished = job.wait_with_output().unwrap();

    // Assert: it succeeded, and each migration was applied once.
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(
        rt.block_on(database.count("SELECT count(*) FROM seaql_migrations")),
        migration::Migrator::migrations().len() as i64
    );
}
