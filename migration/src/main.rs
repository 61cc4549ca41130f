use std::time::{Duration, Instant};

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, Database};

/// How often `migration wait` looks again, and says again that it waits.
const POLL: Duration = Duration::from_secs(2);
const SAY_EVERY: Duration = Duration::from_secs(60);

/// Same default as the services (compose's development account), so
/// `cargo run -p migration -- up` works against `docker compose up -d
/// postgres` without extra setup.
const DEFAULT_DATABASE_URL: &str = "postgres://ecommerce:ecommerce-dev@localhost:5432/ecommerce";

fn main() {
    if std::env::var_os("DATABASE_URL").is_none() {
        // SAFETY: no other thread exists yet; the runtime is built below.
        unsafe { std::env::set_var("DATABASE_URL", DEFAULT_DATABASE_URL) };
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["up"] {
        // Under an advisory lock, so that two migrators (a Job and a
        // developer, two Jobs) apply each migration once (SeaORM's own
        // `up` takes no lock).
        let url = std::env::var("DATABASE_URL").expect("set above");
        let applied = runtime.block_on(async {
            let db = Database::connect(migration::unlimited(ConnectOptions::new(url))).await?;
            for (role, password) in role_passwords() {
                migration::access::ensure_login_role(&db, &role, &password).await?;
                println!("login role {role} set up");
            }
            migration::migrate(&db).await
        });
        match applied {
            Ok(granted) => {
                println!("all migrations applied");
                for role in granted.roles {
                    println!("{role}: granted its tables");
                }
                for role in granted.missing_roles {
                    println!(
                        "{role}: no such role, nothing granted (create it, or set its password variable, and run `migration up` again)"
                    );
                }
            }
            Err(e) => {
                eprintln!("migration up failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args == ["wait"] {
        let url = std::env::var("DATABASE_URL").expect("set above");
        runtime.block_on(wait_until_current(&url));
        println!("the database schema is current");
        return;
    }
    runtime.block_on(cli::run_cli_with_connection(
        migration::Migrator,
        |options| Database::connect(migration::unlimited(options)),
    ));
}

/// The service roles to create (or whose password to set) before
/// migrating: `ORDER_DATABASE_PASSWORD`, `PRODUCT_DATABASE_PASSWORD`,
/// `NOTIFICATION_DATABASE_PASSWORD`, each when set and not blank. Needs a
/// migrating role with CREATEROLE (compose's superuser); where roles are
/// made otherwise (CloudNativePG's managed roles), leave them unset.
fn role_passwords() -> Vec<(String, String)> {
    migration::access::SERVICES
        .iter()
        .filter_map(|access| {
            let var = format!("{}_DATABASE_PASSWORD", access.service.to_uppercase());
            let password = std::env::var(var).ok().filter(|p| !p.trim().is_empty())?;
            Some((access.role(), password))
        })
        .collect()
}

/// `migration wait`: returns once every migration this build knows is
/// applied, saying what it waits for (the Kubernetes Deployments run it as
/// an init container, so that a pod of a new image is not started, let
/// alone counted ready, before the migration Job has succeeded).
async fn wait_until_current(url: &str) {
    let mut said: Option<(String, Instant)> = None;
    loop {
        let state = async {
            let db = Database::connect(migration::unlimited(ConnectOptions::new(url))).await?;
            let state = migration::schema_state(&db).await;
            db.close().await.ok();
            state
        }
        .await;
        let waiting = match state {
            Ok(state) if state.is_current() => return,
            Ok(state) => format!("{}, the first {}", state.missing(), state.pending[0]),
            // Waiting does not fix a certificate: the pod fails, saying why,
            // rather than sitting in its init container for ever.
            Err(e) if migration::tls::untrusted_database_certificate(&e).is_some() => {
                let refused = migration::tls::untrusted_database_certificate(&e);
                eprintln!(
                    "not connecting to PostgreSQL: its certificate is not trusted ({}); check sslrootcert in DATABASE_URL",
                    refused.expect("matched above")
                );
                std::process::exit(1);
            }
            Err(e) => format!("the database does not answer: {e}"),
        };
        let repeat = said
            .as_ref()
            .is_none_or(|(before, at)| *before != waiting || at.elapsed() >= SAY_EVERY);
        if repeat {
            println!("waiting for the database schema: {waiting}");
            said = Some((waiting, Instant::now()));
        }
        tokio::time::sleep(POLL).await;
    }
}
