//! `migration up`, as the Kubernetes migration Job and compose's `migrate`
//! run it: under an advisory lock, so that two migrators apply each
//! migration once, and without any lock or statement timeout, so that it
//! waits for what it needs however long others hold it.

use std::time::Duration;

use migration::MigratorTrait as _;
use migration::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use testkit::{TestDatabase, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn migration_up_waits_for_a_migration_under_way_then_finds_its_work_done() {
    // Arrange: an empty database where someone holds the migration lock,
    // as another migrator under way does.
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

#[tokio::test(flavor = "multi_thread")]
async fn migration_up_waits_for_a_table_lock_longer_than_any_lock_timeout_then_succeeds() {
    // Arrange: every migration applied but the last; sessions on this
    // database default to a lock timeout (1 s; the services set 5 s on
    // theirs); a long transaction holds the table of applied migrations,
    // which any migration run reads and writes.
    let database = TestDatabase::create().await.unwrap();
    let db = database.connect().await;
    let all = migration::Migrator::migrations().len() as u32;
    migration::Migrator::up(&db, Some(all - 1)).await.unwrap();
    db.execute_unprepared(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L', current_database(), '1s'); END $$",
    )
    .await
    .unwrap();
    let holder = db.begin().await.unwrap();
    holder
        .execute_unprepared("LOCK TABLE seaql_migrations IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    // Act: `migration up` starts meanwhile; the holder lets go only once
    // it has waited for the table twice as long as the lock timeout.
    let mut job = std::process::Command::new(env!("CARGO_BIN_EXE_migration"))
        .arg("up")
        .env("DATABASE_URL", database.url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting migration up");
    eventually(WAIT, "migration up to wait for the lock for 2 s", || {
        let exited = job.try_wait().unwrap();
        let database = &database;
        async move {
            assert!(exited.is_none(), "migration up gave up waiting: {exited:?}");
            let waiting = database
                .count(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock' AND now() - query_start > interval '2 s'",
                )
                .await;
            (waiting == 1).then_some(())
        }
    })
    .await;
    holder.commit().await.unwrap();
    let finished = tokio::task::spawn_blocking(move || job.wait_with_output().unwrap())
        .await
        .unwrap();

    // Assert: it succeeded, and the last migration is applied.
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(
        database
            .count("SELECT count(*) FROM seaql_migrations")
            .await,
        i64::from(all)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_wait_returns_once_another_has_migrated() {
    // Arrange: an empty database; `migration wait` (an init container) on it.
    let database = TestDatabase::create().await.unwrap();
    let mut waiter = std::process::Command::new(env!("CARGO_BIN_EXE_migration"))
        .arg("wait")
        .env("DATABASE_URL", database.url())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting migration wait");
    let stdout = waiter.stdout.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let _ = lines.send(line.unwrap());
        }
    });
    let first_line = said.recv_timeout(WAIT).expect("a line from migration wait");

    // Act: the migrations run.
    let db = database.connect().await;
    migration::migrate(&db).await.unwrap();
    let finished = tokio::task::spawn_blocking(move || waiter.wait().unwrap())
        .await
        .unwrap();
    reader.join().unwrap();
    let last_line = said.try_iter().last();

    // Assert: it said what it waited for, and ended well once migrated.
    assert!(
        first_line.starts_with(&format!(
            "waiting for the database schema: {} migrations not applied (run `migration up`)",
            migration::Migrator::migrations().len()
        )),
        "{first_line}"
    );
    assert!(finished.success(), "{finished:?}");
    assert_eq!(last_line.as_deref(), Some("the database schema is current"));
}
