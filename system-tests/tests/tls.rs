//! TLS to PostgreSQL and RabbitMQ, against real servers with TLS on: a
//! PostgreSQL (`ssl = on`) and a RabbitMQ with a TLS listener only, in
//! containers from the stand-in images, with a CA and a server certificate
//! this test makes (rcgen), and a second CA that signed nothing of theirs.
//! The clients are the services' own: `foundation::db::connect`, the migration
//! command and the three service binaries (README, "TLS").
//!
//! Needs Docker and the stand-in images (`.ci/images/build`), so it is
//! ignored by a plain `cargo test`; `.ci/run` runs it:
//! `cargo test -p system-tests --test tls -- --ignored --nocapture`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use system_tests::{SETTLE, STARTUP, wait_healthy};
use testkit::{ManagementApi, ServiceProcess, free_port, http, wait_until};

const USER: &str = "ecommerce";
const PASSWORD: &str = "tls-test-password";
/// The stand-in images docker-compose.yml names (`.ci/images/build`).
const POSTGRES_IMAGE: &str = "postgres:17.12-trixie";
const RABBITMQ_IMAGE: &str = "rabbitmq:4.0.5-management";
/// Containers of this test carry this label (for `.ci/run`'s clean-up).
const LABEL: &str = "ecommerce.tls-test";
/// How long a server may take to start.
const SERVER_START: Duration = Duration::from_secs(90);
/// How long a client given the wrong CA may take to give up: a connection
/// attempt or two, where retrying would go on for ever.
const PROMPT: Duration = Duration::from_secs(20);

/// A CA, a server certificate it signed for `127.0.0.1` and `localhost`,
/// and a second CA that signed nothing, as files in a directory of their
/// own (removed when dropped).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make() -> Self {
        let dir = std::env::temp_dir().join(format!("ecommerce-tls-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let certificate = params.self_signed(&key).unwrap();
            (certificate.pem(), Issuer::new(params, key))
        };
        let (ca_pem, issuer) = ca("ecommerce test CA");
        let (wrong_ca_pem, _) = ca("a CA the servers do not use");
        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server_pem = server.signed_by(&server_key, &issuer).unwrap().pem();
        for (name, contents) in [
            ("ca.pem", ca_pem),
            ("wrong-ca.pem", wrong_ca_pem),
            ("server.crt", server_pem),
            // Readable by the containers' users: a key for this test only.
            ("server.key", server_key.serialize_pem()),
        ] {
            std::fs::write(dir.join(name), contents).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("running docker");
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A container of this test, removed (with its volumes) when dropped; its
/// log is printed if the test failed.
struct Container {
    name: String,
}

impl Container {
    fn run(role: &str, args: &[&str]) -> Self {
        let name = format!(
            "ecommerce-tls-{role}-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let label = format!("{LABEL}={}", std::process::id());
        let mut all = vec!["run", "-d", "--name", &name, "--label", &label];
        all.extend_from_slice(args);
        docker(&all);
        Self { name }
    }

    /// The host port `127.0.0.1:X` that the container's `port` is published on.
    fn port(&self, port: u16) -> u16 {
        let published = docker(&["port", &self.name, &format!("{port}/tcp")]);
        published
            .lines()
            .find_map(|line| line.strip_prefix("127.0.0.1:"))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{port} is not published on 127.0.0.1: {published}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(output) = Command::new("docker")
                .args(["logs", "--tail", "60", &self.name])
                .output()
        {
            eprintln!(
                "--- {} ---\n{}{}",
                self.name,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

/// PostgreSQL with `ssl = on` and the test CA's server certificate; it
/// takes connections without TLS too, so the tests check that the
/// sessions used it (`pg_stat_ssl`).
struct Postgres {
    _container: Container,
    port: u16,
}

impl Postgres {
    fn start(pki: &Pki) -> Self {
        let certs = format!("{}:/certs:ro", pki.dir.display());
        // PostgreSQL reads a key only if its user owns it, mode 0600.
        let script = "install -o postgres -g postgres -m 600 /certs/server.crt /certs/server.key /var/lib/postgresql/ \
             && exec docker-entrypoint.sh postgres -c ssl=on \
             -c ssl_cert_file=/var/lib/postgresql/server.crt -c ssl_key_file=/var/lib/postgresql/server.key";
        let container = Container::run(
            "postgres",
            &[
                "-e",
                &format!("POSTGRES_USER={USER}"),
                "-e",
                &format!("POSTGRES_PASSWORD={PASSWORD}"),
                "-e",
                &format!("POSTGRES_DB={USER}"),
                "-p",
                "127.0.0.1::5432",
                "-v",
                &certs,
                "--entrypoint",
                "sh",
                POSTGRES_IMAGE,
                "-c",
                script,
            ],
        );
        let postgres = Self {
            port: container.port(5432),
            _container: container,
        };
        let rt = runtime();
        wait_until(SERVER_START, "PostgreSQL to take TLS connections", || {
            rt.block_on(sea_orm::Database::connect(postgres.url("sslmode=require")))
                .ok()
        });
        postgres
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{USER}?{query}",
            self.port
        )
    }

    fn verify_full(&self, ca: &str) -> String {
        self.url(&format!("sslmode=verify-full&sslrootcert={ca}"))
    }
}

/// RabbitMQ with a TLS listener only (no plain AMQP port), the test CA's
/// server certificate, and its management API.
struct RabbitMq {
    _container: Container,
    amqps_port: u16,
    /// The management API over TLS, as on Kubernetes.
    management_tls_port: u16,
    api: ManagementApi,
}

impl RabbitMq {
    fn start(pki: &Pki) -> Self {
        let config = pki.dir.join("tls.conf");
        std::fs::write(
            &config,
            "listeners.tcp = none\n\
             listeners.ssl.default = 5671\n\
             ssl_options.cacertfile = /certs/ca.pem\n\
             ssl_options.certfile = /certs/server.crt\n\
             ssl_options.keyfile = /certs/server.key\n\
             ssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\n\
             management.tcp.port = 15672\n\
             management.ssl.port = 15671\n\
             management.ssl.cacertfile = /certs/ca.pem\n\
             management.ssl.certfile = /certs/server.crt\n\
             management.ssl.keyfile = /certs/server.key\n",
        )
        .unwrap();
        let certs = format!("{}:/certs:ro", pki.dir.display());
        let config = format!("{}:/etc/rabbitmq/conf.d/20-tls.conf:ro", config.display());
        let container = Container::run(
            "rabbitmq",
            &[
                "-e",
                &format!("RABBITMQ_DEFAULT_USER={USER}"),
                "-e",
                &format!("RABBITMQ_DEFAULT_PASS={PASSWORD}"),
                "-p",
                "127.0.0.1::5671",
                "-p",
                "127.0.0.1::15672",
                "-p",
                "127.0.0.1::15671",
                "-v",
                &certs,
                "-v",
                &config,
                RABBITMQ_IMAGE,
            ],
        );
        let amqps_port = container.port(5671);
        let api = ManagementApi::new(
            &format!("http://127.0.0.1:{}/api", container.port(15672)),
            &format!("amqps://{USER}:{PASSWORD}@127.0.0.1:{amqps_port}/%2f"),
        );
        wait_until(SERVER_START, "RabbitMQ's listeners", || {
            let listeners = api.json("GET", "/overview", None).ok()?;
            let protocols: Vec<_> = listeners["listeners"]
                .as_array()?
                .iter()
                .filter_map(|l| l["protocol"].as_str())
                .collect();
            protocols.contains(&"amqp/ssl").then_some(())
        });
        Self {
            management_tls_port: container.port(15671),
            _container: container,
            amqps_port,
            api,
        }
    }

    fn url(&self) -> String {
        self.url_as(USER, PASSWORD)
    }

    fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "amqps://{user}:{password}@127.0.0.1:{}/%2f",
            self.amqps_port
        )
    }

    /// The broker's client connections, with whether each uses TLS.
    fn connections(&self) -> Vec<(String, bool)> {
        let connections = self.api.json("GET", "/connections", None).unwrap();
        connections
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let name = c["client_properties"]["connection_name"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                (name, c["ssl"].as_bool().unwrap_or(false))
            })
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Whether this session is encrypted, and with which TLS version.
async fn session_tls(db: &DatabaseConnection) -> (bool, String) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .expect("a row for this session");
    (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
    )
}

/// The service `name` with `env` besides its ports, not started yet; its
/// log in a directory of its own; its URL and its admin listener's.
fn service(name: &str, env: &[(&'static str, String)]) -> (ServiceProcess, String, String) {
    let (port, admin_port) = (free_port(), free_port());
    let mut env = env.to_vec();
    env.push(("HTTP_ADDR", format!("127.0.0.1:{port}")));
    env.push(("ADMIN_ADDR", format!("127.0.0.1:{admin_port}")));
    let logs = std::env::temp_dir().join(format!("ecommerce-tls-logs-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&logs).unwrap();
    let process = ServiceProcess::prepare(name, &env, &logs);
    (
        process,
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{admin_port}"),
    )
}

/// Waits until `process` exits by itself; its exit code and how long it ran.
fn exit_of(process: &mut ServiceProcess, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    process.restart();
    wait_until(within, &format!("{} to exit", process.name()), || {
        (!process.is_running()).then_some(())
    });
    (process.reap(), started.elapsed())
}

#[test]
#[ignore = "needs Docker and the stand-in images; .ci/run runs it"]
fn postgresql_over_tls_trusts_the_configured_ca_and_refuses_another_at_once() {
    // Arrange
    let pki = Pki::make();
    let postgres = Postgres::start(&pki);
    let rt = runtime();
    let log = foundation::telemetry::test_logger();

    // Act: the services' own connect, with the right CA, with none
    // (sslmode=require does not check the certificate), with no sslmode
    // (plaintext: TLS only when asked), and with the wrong CA.
    let trusted = rt
        .block_on(foundation::db::connect(
            &postgres.verify_full(&pki.path("ca.pem")),
            &log,
        ))
        .expect("verify-full with the server's CA connects");
    let unchecked = rt
        .block_on(foundation::db::connect(
            &postgres.url("sslmode=require"),
            &log,
        ))
        .expect("require connects to a server whose CA it does not know");
    let unasked = rt
        .block_on(foundation::db::connect(
            &postgres.url("application_name=tls-test"),
            &log,
        ))
        .expect("no sslmode connects");
    let started = Instant::now();
    let wrong = postgres.verify_full(&pki.path("wrong-ca.pem"));
    let refused = rt.block_on(async {
        tokio::time::timeout(PROMPT, foundation::db::connect(&wrong, &log)).await
    });
    let refused_after = started.elapsed();
    let migrated = testkit::migration_up(&postgres.verify_full(&pki.path("ca.pem")));

    // Assert
    let (encrypted, version) = rt.block_on(session_tls(&trusted));
    assert!(encrypted, "the verify-full session is not encrypted");
    assert!(
        rt.block_on(session_tls(&unchecked)).0,
        "the require session is not encrypted"
    );
    assert!(
        !rt.block_on(session_tls(&unasked)).0,
        "a URL without sslmode got TLS (sqlx's default, prefer)"
    );
    let error = refused
        .unwrap_or_else(|_| panic!("connecting with the wrong CA still retried after {PROMPT:?}"))
        .expect_err("the wrong CA was trusted");
    assert!(
        error
            .to_string()
            .contains("PostgreSQL's certificate is not trusted"),
        "{error}"
    );
    assert!(
        migrated.status.success(),
        "migration up over verify-full: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    eprintln!(
        "tls: PostgreSQL over {version}; the wrong CA refused after {} ms: {error}",
        refused_after.as_millis()
    );
}

#[test]
#[ignore = "needs Docker and the stand-in images; .ci/run runs it"]
fn an_order_goes_through_the_services_over_tls_to_both() {
    // Arrange
    let pki = Pki::make();
    let postgres = Postgres::start(&pki);
    let rabbitmq = RabbitMq::start(&pki);
    let database_url = postgres.verify_full(&pki.path("ca.pem"));
    let migrated = testkit::migration_up(&database_url);
    assert!(migrated.status.success(), "{migrated:?}");
    // The broker's setup step, over TLS too, the services' users through
    // the management API's TLS listener (as the Kubernetes Job does).
    let mut topology = std::process::Command::new(testkit::binary("topology"));
    topology
        .env("AMQP_URL", rabbitmq.url())
        .env("AMQP_CA_FILE", pki.path("ca.pem"))
        .env(
            "RABBITMQ_MANAGEMENT_URL",
            format!("https://127.0.0.1:{}", rabbitmq.management_tls_port),
        )
        .stdin(std::process::Stdio::null());
    for service in ["order", "product", "notification"] {
        topology.env(
            format!("{}_AMQP_PASSWORD", service.to_uppercase()),
            testkit::service_password(service),
        );
    }
    let declared = topology.output().unwrap();
    assert!(declared.status.success(), "{declared:?}");
    // Each service on its own broker user.
    let env = |service: &str| {
        [
            ("DATABASE_URL", database_url.clone()),
            (
                "AMQP_URL",
                rabbitmq.url_as(
                    &contracts::topology::user_of(service),
                    &testkit::service_password(service),
                ),
            ),
            ("AMQP_CA_FILE", pki.path("ca.pem")),
        ]
    };
    let (mut order, order_url, order_admin) = service("order", &env("order"));
    let (mut product, product_url, product_admin) = service("product", &env("product"));
    let (mut notification, _, notification_admin) = service("notification", &env("notification"));
    for (process, admin_url) in [
        (&mut order, &order_admin),
        (&mut product, &product_admin),
        (&mut notification, &notification_admin),
    ] {
        process.restart();
        wait_healthy(admin_url);
    }
    wait_until(STARTUP, "the consumers of both services to attach", || {
        let names: Vec<_> = rabbitmq.connections().into_iter().map(|(n, _)| n).collect();
        (names.contains(&"product-consumer".to_string())
            && names.contains(&"notification-consumer".to_string()))
        .then_some(())
    });

    // Act
    let (status, answer) = http("POST", &format!("{order_url}/create_order"), None).unwrap();

    // Assert: the order reached the product service (stock 10 -> 9) through
    // RabbitMQ, and every connection to either server is encrypted.
    assert_eq!(status, 201, "{answer}");
    wait_until(SETTLE, "stock of 123 to reach 9", || {
        let (status, body) = http("GET", &format!("{product_url}/products"), None).ok()?;
        let products: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && products["123"]["stock"] == 9).then_some(())
    });
    let connections = rabbitmq.connections();
    assert!(connections.len() >= 4, "{connections:?}");
    assert!(connections.iter().all(|(_, ssl)| *ssl), "{connections:?}");
    let rt = runtime();
    let db = rt
        .block_on(sea_orm::Database::connect(postgres.url("sslmode=require")))
        .unwrap();
    let row = rt
        .block_on(db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) \
             WHERE a.usename = 'ecommerce' AND a.pid <> pg_backend_pid()",
        )))
        .unwrap()
        .unwrap();
    let (plain, sessions): (i64, i64) = (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
    );
    assert_eq!(plain, 0, "{plain} of {sessions} sessions without TLS");
    assert!(sessions >= 3, "{sessions} sessions");
    eprintln!(
        "tls: order placed and applied; {} broker connections, {sessions} database sessions, all over TLS",
        connections.len()
    );
}

#[test]
#[ignore = "needs Docker and the stand-in images; .ci/run runs it"]
fn a_service_given_the_wrong_ca_exits_at_startup_naming_the_dependency() {
    // Arrange
    let pki = Pki::make();
    let postgres = Postgres::start(&pki);
    let rabbitmq = RabbitMq::start(&pki);
    let right = postgres.verify_full(&pki.path("ca.pem"));
    assert!(testkit::migration_up(&right).status.success());
    let cases = [
        (
            "the wrong CA for PostgreSQL",
            postgres.verify_full(&pki.path("wrong-ca.pem")),
            pki.path("ca.pem"),
            Some(1),
            "not connecting to PostgreSQL: its certificate is not trusted",
        ),
        (
            "the wrong CA for RabbitMQ",
            right.clone(),
            pki.path("wrong-ca.pem"),
            Some(1),
            "not connecting to RabbitMQ: its certificate is not trusted",
        ),
        (
            "a CA file that does not exist",
            right.clone(),
            pki.path("missing.pem"),
            Some(2),
            "invalid AMQP_CA_FILE",
        ),
    ];

    for (case, database_url, amqp_ca, expected_code, expected_line) in cases {
        let (mut order, _, _) = service(
            "order",
            &[
                ("DATABASE_URL", database_url),
                ("AMQP_URL", rabbitmq.url()),
                ("AMQP_CA_FILE", amqp_ca),
            ],
        );

        // Act
        let (code, ran) = exit_of(&mut order, PROMPT);

        // Assert
        let log = order.log();
        assert_eq!(code, expected_code, "{case}: {log}");
        assert!(log.contains(expected_line), "{case}: {log}");
        assert!(
            !log.contains(PASSWORD),
            "{case}: the log shows the password"
        );
        let line = log
            .lines()
            .find(|l| l.contains(expected_line))
            .unwrap_or("");
        eprintln!(
            "tls: {case}: exit code {code:?} after {} ms: {line}",
            ran.as_millis()
        );
    }

    // And the Kubernetes init container, `migration wait`, which waits for
    // a database that does not answer yet, but not for a certificate.
    let started = Instant::now();
    let mut wait = std::process::Command::new(testkit::binary("migration"))
        .arg("wait")
        .env(
            "DATABASE_URL",
            postgres.verify_full(&pki.path("wrong-ca.pem")),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running migration wait");
    let exited = wait_until(PROMPT, "migration wait to exit", || {
        wait.try_wait().expect("its status")
    });
    let output = wait.wait_with_output().expect("its output");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(exited.code(), Some(1), "migration wait: {said}");
    assert!(
        said.contains("not connecting to PostgreSQL: its certificate is not trusted"),
        "migration wait: {said}"
    );
    eprintln!(
        "tls: migration wait with the wrong CA: exit code 1 after {} ms",
        started.elapsed().as_millis()
    );
}
