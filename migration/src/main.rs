use sea_orm_migration::prelude::*;

/// Same default as the services, so `cargo run -p migration -- up` works
/// against a local PostgreSQL without extra setup.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@localhost:5432/ecommerce";

fn main() {
    if std::env::var_os("DATABASE_URL").is_none() {
        // SAFETY: no other thread exists yet; the runtime is built below.
        unsafe { std::env::set_var("DATABASE_URL", DEFAULT_DATABASE_URL) };
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
        .block_on(cli::run_cli(migration::Migrator));
}
