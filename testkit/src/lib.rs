//! Test helpers shared by the integration and system tests. Every test gets
//! its own PostgreSQL database and its own RabbitMQ vhost, so tests run in
//! parallel on one server and leave nothing behind (both are dropped with
//! their guard, also when the test panics).

use std::future::Future;
use std::time::{Duration, Instant};

pub mod broker;
pub mod openapi;
pub mod process;
pub mod proxy;

pub use broker::{BrokerClient, ManagementApi, QueueTotals, TestVhost};
pub use process::{ServiceProcess, binary, free_port, migration_up};
pub use proxy::TcpProxy;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};

/// The account `docker compose` sets up from `.env.example`, for PostgreSQL
/// and RabbitMQ alike, which the tests use unless told otherwise; `.ci/run`
/// creates it on the machine's own servers.
pub const COMPOSE_USER: &str = "ecommerce";
pub const COMPOSE_PASSWORD: &str = "ecommerce-dev";

/// Maintenance database of the test server; override with `TEST_PG_URL`.
/// Its user creates and drops a database per test.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| {
        format!("postgres://{COMPOSE_USER}:{COMPOSE_PASSWORD}@127.0.0.1:5432/postgres")
    })
}

/// Where the test PostgreSQL listens, for a [`TcpProxy`] in front of it.
pub fn pg_address() -> std::net::SocketAddr {
    address_of(&pg_admin_url(), 5432)
}

/// Where the test RabbitMQ listens, for a [`TcpProxy`] in front of it.
pub fn amqp_address() -> std::net::SocketAddr {
    address_of(&broker::amqp_base(), 5672)
}

fn address_of(url: &str, default_port: u16) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let url = url_of(url);
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    (host.as_str(), url.port().unwrap_or(default_port))
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("{} names no reachable host", url.host_str().unwrap_or("")))
}

/// `url` with its host and port replaced by 127.0.0.1:`port`: the same
/// server reached through a [`TcpProxy`].
pub fn via_port(url: &str, port: u16) -> String {
    let mut url = url_of(url);
    url.set_host(Some("127.0.0.1")).expect("a host");
    url.set_port(Some(port)).expect("a port");
    url.to_string()
}

/// The password of `service`'s own PostgreSQL role and RabbitMQ user in
/// the tests, as `.env.example` sets it for compose (`ORDER_PASSWORD`, ...).
pub fn service_password(service: &str) -> String {
    format!("{service}-dev")
}

/// Arbitrary but fixed key of the lock under which test processes set up
/// the service roles, which belong to the whole server.
const ROLES_LOCK_KEY: i64 = 0x0e_c0_0e_01;

/// Creates the services' login roles where missing. Roles belong to the
/// server, not to one database: test processes running at once take turns
/// (an advisory lock in the maintenance database), and an existing role is
/// left as it is.
async fn ensure_service_roles() -> anyhow::Result<()> {
    let admin = Database::connect(pg_admin_url())
        .await
        .context("connecting to the test PostgreSQL")?;
    let lock = |sql: &'static str| {
        sea_orm::Statement::from_sql_and_values(
            admin.get_database_backend(),
            sql,
            [ROLES_LOCK_KEY.into()],
        )
    };
    // One session: the pool of one connection holds the lock it takes.
    let session = admin.begin().await?;
    session
        .execute_raw(lock("SELECT pg_advisory_xact_lock($1)"))
        .await?;
    for access in migration::access::SERVICES {
        let role = access.role();
        let exists = session
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                admin.get_database_backend(),
                "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
                [role.clone().into()],
            ))
            .await?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if !exists {
            migration::access::ensure_login_role(
                &session,
                &role,
                &service_password(access.service),
            )
            .await
            .with_context(|| format!("creating the role {role}"))?;
        }
    }
    session.commit().await?;
    admin.close().await?;
    Ok(())
}

/// A database created for one test and dropped with this guard.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// The services' own roles ([`migration::access`]) are set up first,
    /// so that migrating grants them their tables.
    pub async fn create() -> anyhow::Result<Self> {
        ensure_service_roles().await?;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(pg_admin_url())
            .await
            .context("connecting to the test PostgreSQL")?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .context("creating the test database")?;
        admin.close().await?;
        let mut url = url_of(&pg_admin_url());
        url.set_path(&name);
        Ok(Self {
            url: url.to_string(),
            name,
        })
    }

    /// A database created for one test with every migration applied, as
    /// the `migration` command applies them before services start (they
    /// wait for the schema, they do not migrate).
    pub async fn migrated() -> anyhow::Result<Self> {
        let database = Self::create().await?;
        let db = database.connect().await;
        migration::migrate(&db)
            .await
            .context("migrating the test database")?;
        db.close().await?;
        Ok(database)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// This database as `service`'s own role sees it: the account compose
    /// gives the service (`.env.example`), with only its grants.
    pub fn url_as(&self, service: &str) -> String {
        let mut url = url_of(&self.url);
        url.set_username(&migration::access::role_of(service))
            .expect("a URL with a host");
        url.set_password(Some(&service_password(service)))
            .expect("a URL with a host");
        url.to_string()
    }

    /// The URL of this database through `127.0.0.1:port` (a [`TcpProxy`]).
    pub fn url_via(&self, port: u16) -> String {
        via_port(&self.url, port)
    }

    /// A proxy in front of the test server, and this database's URL through it.
    pub fn proxied(&self) -> (TcpProxy, String) {
        let proxy = TcpProxy::start(pg_address());
        let url = self.url_via(proxy.port());
        (proxy, url)
    }

    /// `SELECT count(*) ...` or any query whose first column is a bigint.
    pub async fn count(&self, sql: &str) -> i64 {
        let db = self.connect().await;
        let value = count(&db, sql).await;
        db.close().await.ok();
        value
    }

    /// Makes this database refuse new sessions and ends the open ones (as
    /// maintenance does: `ALLOW_CONNECTIONS false`, then SQLSTATE 55000 on
    /// connect), or lets it take sessions again.
    pub async fn refuse_connections(&self, refuse: bool) {
        let admin = Database::connect(pg_admin_url())
            .await
            .expect("connecting to the test PostgreSQL");
        let name = &self.name;
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {}",
                !refuse
            ))
            .await
            .expect("ALTER DATABASE ... ALLOW_CONNECTIONS");
        if refuse {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .await
                .expect("ending the database's sessions");
        }
        admin.close().await.ok();
    }

    /// Makes every new session on this database read-only, as on a standby,
    /// and ends the open ones (the primary went away, and the address now
    /// leads to a server that takes no writes); or lets new sessions write
    /// again (the address leads to the primary again), leaving the sessions
    /// opened meanwhile as they are.
    pub async fn act_as_standby(&self, standby: bool) {
        let admin = Database::connect(pg_admin_url())
            .await
            .expect("connecting to the test PostgreSQL");
        let name = &self.name;
        let setting = if standby {
            "SET default_transaction_read_only = on"
        } else {
            "RESET default_transaction_read_only"
        };
        admin
            .execute_unprepared(&format!("ALTER DATABASE \"{name}\" {setting}"))
            .await
            .expect("ALTER DATABASE ... default_transaction_read_only");
        if standby {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .await
                .expect("ending the database's sessions");
        }
        admin.close().await.ok();
    }

    /// A fresh connection to this database, for assertions.
    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("TEST_KEEP_FAILED_DB").is_some() {
            eprintln!("test database kept: {}", self.url);
            return;
        }
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let admin = Database::connect(pg_admin_url()).await?;
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await?;
                    admin.close().await?;
                    anyhow::Ok(())
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

pub(crate) fn url_of(raw: &str) -> url::Url {
    url::Url::parse(raw).expect("a valid URL")
}

/// A service's common settings for a test: port 0, `database`, the broker at
/// `amqp_url`.
pub fn service_settings(
    database: &TestDatabase,
    amqp_url: &str,
) -> platform::config::ServiceSettings {
    platform::config::ServiceSettings {
        http_addr: "127.0.0.1:0".parse().expect("an address"),
        admin_addr: "127.0.0.1:0".parse().expect("an address"),
        database_url: database.url().to_string(),
        amqp_url: amqp_url.to_string(),
        amqp_ca: None,
        consumer: messaging::config::ConsumerSettings::default(),
        http: platform::config::HttpLimits::default(),
    }
}

/// `count(*)` or any query whose first column is a bigint, on `db`.
pub async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("the query runs")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a bigint")
}

/// Polls `probe` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Blocking twin of [`eventually`], for tests that drive processes.
pub fn wait_until<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `probe` says done, for as long as it keeps making progress:
/// panics once `progress` has not grown for `stall`. For waits whose length
/// depends on a backlog, such as the end of a chaos run.
pub fn wait_while_progressing(stall: Duration, what: &str, mut probe: impl FnMut() -> (u64, bool)) {
    let mut best = 0;
    let mut last_progress = Instant::now();
    loop {
        let (progress, done) = probe();
        if done {
            return;
        }
        if progress > best {
            best = progress;
            last_progress = Instant::now();
        }
        assert!(
            last_progress.elapsed() < stall,
            "no progress for {stall:?} waiting for {what} (progress {best})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A blocking HTTP call; returns the status and the body as text.
pub fn http(method: &str, url: &str, body: Option<&str>) -> anyhow::Result<(u16, String)> {
    http_with(method, url, body, &[])
}

/// [`http`] with more request headers.
pub fn http_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let agent = broker::agent();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = match body {
        Some(body) => agent.run(
            request
                .header("content-type", "application/json")
                .body(body.to_string())?,
        )?,
        None => agent.run(request.body(())?)?,
    };
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
}

/// `GET {address}/metrics`, as series (`name{labels}`) and their values.
pub async fn scrape_metrics(address: &str) -> std::collections::HashMap<String, f64> {
    let mut response = awc::Client::default()
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200, "GET /metrics");
    let body = response.body().await.expect("a body");
    String::from_utf8(body.to_vec())
        .expect("the text format")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}
