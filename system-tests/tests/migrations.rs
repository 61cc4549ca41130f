//! Migrations apart from serving, through the real binaries: services do
//! not migrate; one started before the migrations waits (alive, not ready,
//! saying why) and then serves; a failing migration leaves the replicas
//! that serve serving, and those starting meanwhile waiting, not exiting.

use serde_json::Value;
use system_tests::{Options, STARTUP, System};
use testkit::{ServiceProcess, http, wait_until};

/// `GET {base_url}/ready`: the status and the body.
fn readiness(base_url: &str) -> Option<(u16, Value)> {
    let (status, body) = http("GET", &format!("{base_url}/ready"), None).ok()?;
    Some((status, serde_json::from_str(&body).ok()?))
}

/// Waits until the service at `base_url` answers that it waits for the
/// schema, and returns what `/ready` said.
fn wait_for_schema_wait(base_url: &str, service: &mut ServiceProcess) -> Value {
    wait_until(
        STARTUP,
        &format!("{} to say it waits for the schema", service.name()),
        || {
            assert!(
                service.is_running(),
                "{} exited instead of waiting:\n{}",
                service.name(),
                service.log()
            );
            match readiness(base_url) {
                Some((503, body)) if body["checks"]["schema"].is_string() => Some(body),
                _ => None,
            }
        },
    )
}

fn wait_ready(base_url: &str) {
    wait_until(STARTUP, &format!("{base_url}/ready to answer 200"), || {
        matches!(readiness(base_url), Some((200, _))).then_some(())
    });
}

#[test]
fn a_service_started_before_the_migrations_waits_then_serves() {
    // Arrange: an empty database; order starts on it.
    let mut system = System::start_with(Options {
        unmigrated: true,
        order_only: true,
        ..Options::default()
    });
    let order_url = system.order_admin_url.clone();

    // Act: it waits...
    let waiting = wait_for_schema_wait(&order_url, &mut system.order);
    let (health, _) = http("GET", &format!("{order_url}/health"), None).unwrap();
    let (refused, refusal) =
        http("POST", &format!("{}/create_order", system.order_url), None).unwrap();
    let tables = system.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    // ...until the migrations run.
    let migrated = system.migrate();
    wait_ready(&order_url);
    system.start_consumers();
    let placed = system.place_order(None);

    // Assert: while waiting it was alive, not ready, said why in `/ready`
    // and its log, touched no table and took no order; once migrated, it
    // serves, and the order is applied end to end.
    assert_eq!(waiting["status"], "not ready", "{waiting}");
    assert_eq!(waiting["checks"]["database"], "ok", "{waiting}");
    let known = <migration::Migrator as migration::MigratorTrait>::migrations().len();
    assert_eq!(
        waiting["checks"]["schema"],
        format!("{known} migrations not applied (run `migration up`)"),
        "{waiting}"
    );
    assert_eq!(health, 200);
    assert_eq!(refused, 503, "{refusal}");
    assert!(
        refusal.contains("waiting for the database schema"),
        "{refusal}"
    );
    assert_eq!(tables, 0, "a waiting service creates nothing");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let log = system.order.log();
    assert!(
        log.contains(&format!(
            "waiting for the database schema: {known} migrations not applied (run `migration up`)"
        )),
        "{log}"
    );
    assert!(
        log.contains("the database schema is current: starting"),
        "{log}"
    );
    assert_eq!(placed["status"], "pending", "{placed}");
    system.wait_for_stock("123", 9);
}

#[test]
fn a_failing_migration_leaves_serving_replicas_serving_and_starting_ones_waiting() {
    // Arrange: order serves on the migrated database. Then the last
    // migration is pending again while its column is already there, so
    // that applying it fails (as one meeting an object made by hand does).
    let mut system = System::start_with(Options {
        order_only: true,
        ..Options::default()
    });
    system.place_order(None);
    let last = "(SELECT max(version) FROM seaql_migrations)";
    system.execute(&format!(
        "CREATE TABLE set_aside AS SELECT * FROM seaql_migrations WHERE version = {last}; \
         DELETE FROM seaql_migrations WHERE version IN (SELECT version FROM set_aside)"
    ));
    let applied_before = system.count("SELECT count(*) FROM seaql_migrations");

    // Act: `migration up` fails; product starts meanwhile (a new replica,
    // or one restarted), and order keeps taking orders.
    let failed = system.migrate();
    system.product.restart();
    let product_url = system.product_admin_url.clone();
    let waiting = wait_for_schema_wait(&product_url, &mut system.product);
    let (health, _) = http("GET", &format!("{product_url}/health"), None).unwrap();
    let placed = system.place_order(None);
    // The operator repairs: the column is the migration's, so it is
    // recorded as applied.
    system.execute("INSERT INTO seaql_migrations SELECT * FROM set_aside");
    wait_ready(&product_url);

    // Assert: the migration failed with the database's reason and changed
    // nothing; product waited, alive, saying why, and serves once the
    // schema is right; order served throughout.
    assert!(!failed.status.success(), "migration up succeeded");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        system.count("SELECT count(*) FROM seaql_migrations"),
        applied_before + 1,
        "only the repair's record was added"
    );
    assert_eq!(
        waiting["checks"]["schema"], "1 migration not applied (run `migration up`)",
        "{waiting}"
    );
    assert_eq!(health, 200);
    assert_eq!(placed["status"], "pending", "{placed}");
    assert!(system.order.is_running());
    // The two orders taken meanwhile are applied once product serves.
    system.wait_for_stock("123", 8);
}

#[test]
fn a_service_serves_on_a_schema_a_newer_release_has_migrated_further() {
    // Arrange: a newer release's migration is applied beside this build's
    // (a rolling upgrade: the Job ran, old pods still start).
    let mut system = System::start_with(Options {
        order_only: true,
        ..Options::default()
    });
    system.execute(
        "INSERT INTO seaql_migrations (version, applied_at) \
         VALUES ('m20991231_000001_from_a_newer_release', 0)",
    );

    // Act: product starts on it.
    system.product.restart();
    let product_url = system.product_admin_url.clone();
    wait_ready(&product_url);

    // Assert: it serves, and says the schema is ahead of it.
    assert_eq!(system.stock("123"), 10);
    let log = system.product.log();
    assert!(
        log.contains("the database schema is ahead of this build")
            && log.contains("m20991231_000001_from_a_newer_release"),
        "{log}"
    );
}
