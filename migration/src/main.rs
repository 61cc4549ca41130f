use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, Database};

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
            migration::migrate(&db).await
        });
        if let Err(e) = applied {
            eprintln!("migration up failed: {e}");
            std::process::exit(1);
        }
        println!("all migrations applied");
        return;
    }
    runtime.block_on(cli::run_cli_with_connection(
        migration::Migrator,
        |options| Database::connect(migration::unlimited(options)),
    ));
}
