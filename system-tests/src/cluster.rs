//! The system on a cluster of containers, as `deploy/cluster/cluster` brings
//! it up: three RabbitMQ nodes, a PostgreSQL primary with two synchronous
//! standbys, HAProxy in the place of Kubernetes Services, and two replicas of
//! each service from the project's image. Faults go through the same script
//! a person would use (`kill rabbit2`, `pg-failover`, ...).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::{ManagementApi, QueueTotals, http};

use crate::Ledger;

pub struct Cluster {
    /// The order service's endpoint.
    pub order_url: String,
    /// The read-write endpoint.
    pub database_url: String,
    api: ManagementApi,
    rt: tokio::runtime::Runtime,
    down: Down,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster/cluster")
}

/// Takes down what `cluster up` brought up, also when it failed half way.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CLUSTER_KEEP_LOGS").is_some() {
            keep_logs(&self.0);
        }
        let _ = Command::new(script())
            .arg("down")
            .env("CLUSTER", &self.0)
            .status();
    }
}

impl Cluster {
    /// Brings a cluster of this test process's own up (its containers and
    /// network are named after the process), and takes it down when dropped.
    pub fn up() -> Self {
        let down = Down(format!("ecommerce-test-{}", std::process::id()));
        let endpoints = run(&down.0, &["up"]);
        let endpoint = |key: &str| {
            endpoints
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("`cluster up` printed no {key}: {endpoints}"))
                .to_string()
        };
        Self {
            order_url: endpoint("ORDER_URL"),
            database_url: endpoint("DATABASE_URL"),
            api: ManagementApi::new(&endpoint("RABBITMQ_API"), &endpoint("AMQP_URL")),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            down,
        }
    }

    /// How many emails the notification replicas have sent: their
    /// `[x] NOTIFICATION` lines, restarts included (what customers got,
    /// where `sent_emails` holds what was recorded).
    pub fn emails_sent(&self) -> i64 {
        let containers = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=ecommerce.cluster={}", self.down.0),
            "--filter",
            "name=-notification",
            "--format",
            "{{.Names}}",
        ]);
        containers
            .lines()
            .map(|container| {
                let output = Command::new("docker")
                    .args(["logs", container])
                    .output()
                    .unwrap_or_else(|e| panic!("docker logs {container}: {e}"));
                [output.stdout, output.stderr]
                    .iter()
                    .flat_map(|log| log.split(|&byte| byte == b'\n'))
                    .filter(|line| line.windows(16).any(|w| w == b"[x] NOTIFICATION"))
                    .count() as i64
            })
            .sum()
    }

    /// Runs `deploy/cluster/cluster ARGS` on this cluster; returns what it
    /// printed on stdout (its log goes to stderr as it runs).
    pub fn run(&self, args: &[&str]) -> String {
        run(&self.down.0, args)
    }

    /// The RabbitMQ node leading `queue` (`rabbit2`).
    pub fn leader(&self, queue: &str) -> String {
        self.run(&["leader", queue])
    }

    /// Every queue on the cluster, as the management API describes it.
    pub fn queues(&self) -> Vec<serde_json::Value> {
        match self.api.json("GET", "/queues/%2F", None) {
            Ok(serde_json::Value::Array(queues)) => queues,
            other => panic!("GET /api/queues/%2F: {other:?}"),
        }
    }

    /// The PostgreSQL node behind the read-write endpoint (`pg1`).
    pub fn pg_primary(&self) -> String {
        self.run(&["pg-primary"])
    }

    /// A connection through the read-write endpoint.
    async fn session(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(&self.database_url)
            .await
            .expect("the read-write endpoint answers")
    }

    /// Adds a product through the read-write endpoint.
    pub fn add_product(&self, id: &str, stock: i64) {
        let sql =
            format!("INSERT INTO products (id, name, stock) VALUES ('{id}', 'Test item', {stock})");
        self.rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = self.session().await;
            db.execute_unprepared(&sql).await.unwrap();
            db.close().await.ok();
        });
    }

    /// The sum of a counter over every replica of every service (each
    /// replica's `GET /metrics`, straight at its container).
    pub fn counter_total(&self, name: &str) -> f64 {
        let endpoints = self.run(&["endpoints"]);
        let replicas = endpoints
            .lines()
            .find_map(|line| line.strip_prefix("REPLICAS="))
            .expect("`cluster endpoints` lists the replicas");
        let mut total = 0.0;
        for replica in replicas.split_whitespace() {
            let (status, text) = http("GET", &format!("{replica}/metrics"), None)
                .unwrap_or_else(|e| panic!("GET {replica}/metrics: {e}"));
            assert_eq!(status, 200, "GET {replica}/metrics");
            total += text
                .lines()
                .filter(|line| line.starts_with(name))
                .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum::<f64>();
        }
        total
    }
}

/// Runs `deploy/cluster/cluster ARGS` on the cluster `name`, for at most
/// ten minutes.
fn run(name: &str, args: &[&str]) -> String {
    let mut command = Command::new("timeout");
    command
        .arg("600")
        .arg(script())
        .args(args)
        .env("CLUSTER", name)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    stdout_of(
        command,
        &format!("deploy/cluster/cluster {}", args.join(" ")),
    )
}

/// Keeps every container's log of the cluster `name` in a folder of the
/// temp dir: when a test fails, or always with `CLUSTER_KEEP_LOGS`.
fn keep_logs(name: &str) {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::create_dir_all(&dir);
    let names = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=ecommerce.cluster={name}"),
        "--format",
        "{{.Names}}",
    ]);
    for container in names.lines() {
        if let Ok(output) = Command::new("docker").args(["logs", container]).output() {
            let mut log = output.stdout;
            log.extend(output.stderr);
            let _ = std::fs::write(dir.join(format!("{container}.log")), log);
        }
    }
    eprintln!("cluster logs kept in {}", dir.display());
}

fn docker(args: &[&str]) -> String {
    let mut command = Command::new("docker");
    command.args(args);
    stdout_of(command, &format!("docker {}", args.join(" ")))
}

/// What `command` printed on stdout, trimmed; panics naming `what` when it
/// fails.
fn stdout_of(mut command: Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running `{what}`: {e}"));
    assert!(output.status.success(), "`{what}` failed");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

impl Ledger for Cluster {
    fn count(&self, sql: &str) -> i64 {
        self.rt.block_on(async {
            let db = self.session().await;
            let value = testkit::count(&db, sql).await;
            db.close().await.ok();
            value
        })
    }

    fn queue_totals(&self, queue: &str) -> anyhow::Result<QueueTotals> {
        self.api.queue_totals("/", queue)
    }

    fn stored_orders(&self) -> Vec<(String, String)> {
        self.rt.block_on(async {
            let db = self.session().await;
            let orders = crate::stored_orders(&db).await;
            db.close().await.ok();
            orders
        })
    }
}
