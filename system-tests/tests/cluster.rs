//! The cluster test: the system on three RabbitMQ nodes and a replicated
//! PostgreSQL (`deploy/cluster/cluster`), clients placing orders all along,
//! and one fault at a time, each followed by its recovery:
//!   - SIGKILL of the RabbitMQ node leading `product.order_created` (down
//!     20 s, then started again);
//!   - a partition of that queue's leader from the other two nodes (30 s,
//!     twice the net tick time), then healed;
//!   - a rolling restart of the three nodes, each stopped only once that
//!     loses no queue its quorum;
//!   - a PostgreSQL failover (the primary SIGKILLed, the most advanced
//!     standby promoted, the read-write endpoint moved; the old primary
//!     rejoins 10 s later), and a planned switchover;
//!   - a seeded random mix of these, in the manner of `chaos.rs`.
//!
//! After each, with the clients stopped, the books must balance exactly
//! (`assert_settled`, `assert_outcomes`), each email must have gone out
//! exactly once (the notification replicas' log lines against
//! `sent_emails`), and the test prints per fault how
//! long orders stood still, the answers other than `201`, and the
//! redeliveries (README, "Cluster test").
//!
//! Needs Docker, the stand-in images and `ecommerce-rs:dev` built from this
//! checkout, so it is ignored by a plain `cargo test`; `.ci/run` runs it:
//! `cargo test -p system-tests --test cluster -- --ignored --nocapture`.
//! The mix lasts `CLUSTER_MIX_SECONDS` (default 60); replay its schedule
//! with `CLUSTER_SEED`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use system_tests::clients::{CATALOGUE, Clients, Outcomes, assert_outcomes};
use system_tests::cluster::Cluster;
use system_tests::{
    DEMO_STOCK, Ledger, PRODUCT_QUEUE, QUEUES, STARTUP, SeedOnFailure, assert_settled, env_u64,
};
use testkit::wait_until;

const CLIENTS: usize = 4;
/// Once every fault is healed, the backlog must keep shrinking.
const STALL: Duration = Duration::from_secs(120);
const NODE_DOWN: Duration = Duration::from_secs(20);
/// Twice the nodes' net_ticktime (15 s): long enough for the majority to
/// count the node as gone, and for the node to pause itself.
const PARTITION: Duration = Duration::from_secs(30);
const PRIMARY_DOWN: Duration = Duration::from_secs(10);
/// Orders accepted after a recovery, to show intake flows again.
const ORDERS_AFTER: usize = 20;
/// From this long after a recovery, every order must be answered `201`:
/// nothing left over from the fault (a session kept on a standby, say)
/// may keep refusing orders.
const AFTERMATH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    Partition,
    RollingRestart,
    PgFailover,
    PgSwitchover,
}

/// Injects `fault` and recovers from it; says what was done.
fn inject(cluster: &Cluster, fault: Fault, rng: &mut fastrand::Rng, scaled: f64) -> String {
    let hold = |duration: Duration| std::thread::sleep(duration.mul_f64(scaled));
    match fault {
        Fault::KillLeader => {
            let node = cluster.leader(PRODUCT_QUEUE);
            cluster.run(&["kill", &node]);
            hold(NODE_DOWN);
            cluster.run(&["start", &node]);
            format!("kill -9 {node}")
        }
        Fault::Partition => {
            let node = cluster.leader(PRODUCT_QUEUE);
            cluster.run(&["partition", &node]);
            // Not shortened in the mix: the fault is a partition longer
            // than the net tick time.
            std::thread::sleep(PARTITION);
            match cluster.run(&["heal", &node]).as_str() {
                "restarted" => {
                    format!("partition {node} (Mnesia left partitioned: {node} restarted)")
                }
                _ => format!("partition {node}"),
            }
        }
        Fault::RollingRestart => {
            let mut nodes = ["rabbit1", "rabbit2", "rabbit3"];
            rng.shuffle(&mut nodes);
            for node in nodes {
                cluster.run(&["restart", node]);
            }
            format!("restart {}", nodes.join(", "))
        }
        Fault::PgFailover => {
            let old = cluster.run(&["pg-failover"]);
            let new = cluster.pg_primary();
            hold(PRIMARY_DOWN);
            cluster.run(&["start", &old]);
            format!("failover {old} -> {new}")
        }
        Fault::PgSwitchover => {
            let old = cluster.pg_primary();
            cluster.run(&["pg-switchover"]);
            format!("switchover {old} -> {}", cluster.pg_primary())
        }
    }
}

/// How long the pipeline stood still: the longest time in which no order
/// became final while some were pending, and the same for emails. Polls
/// the read-write endpoint; a poll that fails counts as no progress.
struct Progress {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Duration, Duration)>,
}

impl Progress {
    fn watch(database_url: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, stopping) = (database_url.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let poll = || {
                rt.block_on(async {
                    use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};
                    let mut options = ConnectOptions::new(url.clone());
                    options
                        .max_connections(1)
                        .connect_timeout(Duration::from_secs(2))
                        .acquire_timeout(Duration::from_secs(2))
                        .sqlx_logging(false);
                    let db = Database::connect(options).await.ok()?;
                    let row = db
                        .query_one_raw(Statement::from_string(
                            db.get_database_backend(),
                            "SELECT (SELECT count(*) FROM orders),
                                    (SELECT count(*) FROM orders WHERE status <> 'pending'),
                                    (SELECT count(*) FROM sent_emails WHERE sent_at IS NOT NULL)",
                        ))
                        .await
                        .ok()??;
                    db.close().await.ok();
                    let column = |i| row.try_get_by_index::<i64>(i).ok();
                    Some((column(0)?, column(1)?, column(2)?))
                })
            };
            let mut orders_still = Stillness::default();
            let mut emails_still = Stillness::default();
            while !stopping.load(Ordering::SeqCst) {
                let now = Instant::now();
                match poll() {
                    Some((orders, finals, sent)) => {
                        orders_still.observe(now, finals, finals < orders);
                        emails_still.observe(now, sent, sent < 2 * orders);
                    }
                    None => {
                        orders_still.observe(now, -1, true);
                        emails_still.observe(now, -1, true);
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (orders_still.longest, emails_still.longest)
        });
        Self { stop, thread }
    }

    fn stop(self) -> (Duration, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the progress thread")
    }
}

/// The longest time a counter did not move while there was work to do.
#[derive(Default)]
struct Stillness {
    best: i64,
    since: Option<Instant>,
    longest: Duration,
}

impl Stillness {
    fn observe(&mut self, now: Instant, value: i64, behind: bool) {
        if value > self.best || !behind {
            self.best = self.best.max(value);
            self.since = None;
            return;
        }
        let since = *self.since.get_or_insert(now);
        self.longest = self.longest.max(now.duration_since(since));
    }
}

/// One scenario's figures, for the report.
struct Figures {
    name: String,
    fault: String,
    fault_seconds: f64,
    orders_still: Duration,
    emails_still: Duration,
    intake_gap: Duration,
    orders: usize,
    not_accepted: u64,
    unknown: usize,
    redelivered: f64,
}

#[test]
#[ignore = "needs Docker, the stand-in images and ecommerce-rs:dev; .ci/run runs it (README, Cluster test)"]
fn the_books_balance_through_node_loss_partitions_and_failover() {
    // Arrange: the cluster, its queues as production declares them.
    let report_seed = SeedOnFailure::from_env("cluster test", "CLUSTER_SEED");
    let seed = report_seed.seed;
    let mix_seconds = env_u64("CLUSTER_MIX_SECONDS").unwrap_or(60);
    eprintln!("cluster: seed {seed}, mix {mix_seconds} s");
    let mut rng = fastrand::Rng::with_seed(seed);
    let cluster = Cluster::up();
    let queues = cluster.queues();
    let mut names: Vec<_> = queues.iter().filter_map(|q| q["name"].as_str()).collect();
    names.sort_unstable();
    let mut expected = QUEUES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "the system's queues, and no other");
    for queue in &queues {
        let name = queue["name"].as_str().unwrap();
        assert_eq!(queue["type"], "quorum", "{name}");
        let members = queue["members"].as_array().map_or(0, Vec::len);
        assert_eq!(members, 3, "{name} is replicated on the three nodes");
        if !name.ends_with(".dead") {
            assert!(queue["arguments"]["x-delivery-limit"].is_u64(), "{name}");
            assert!(
                queue["arguments"]["x-dead-letter-exchange"].is_string(),
                "{name}"
            );
        }
    }
    for (id, stock) in CATALOGUE {
        cluster.add_product(id, stock);
    }
    let initial_stock: Vec<_> = DEMO_STOCK.iter().chain(CATALOGUE.iter()).copied().collect();
    let order_url = format!("{}/create_order", cluster.order_url);
    let mut everything = Outcomes::default();
    let mut report = vec![];

    let mut scenarios: Vec<(String, Vec<Fault>)> = [
        Fault::KillLeader,
        Fault::Partition,
        Fault::RollingRestart,
        Fault::PgFailover,
        Fault::PgSwitchover,
    ]
    .into_iter()
    .map(|fault| (format!("{fault:?}"), vec![fault]))
    .collect();
    let mut mix = vec![];
    // The mix's schedule, drawn up front from the seed: faults at half
    // length, until their nominal time adds up to the mix's length.
    let mut planned = 0.0;
    while planned < mix_seconds as f64 {
        let fault = match rng.u8(0..100) {
            0..30 => Fault::KillLeader,
            30..50 => Fault::Partition,
            50..60 => Fault::RollingRestart,
            60..85 => Fault::PgFailover,
            _ => Fault::PgSwitchover,
        };
        planned += match fault {
            Fault::KillLeader => 20.0,
            Fault::Partition => 30.0,
            Fault::RollingRestart => 45.0,
            Fault::PgFailover => 10.0,
            Fault::PgSwitchover => 5.0,
        };
        mix.push(fault);
    }
    if !mix.is_empty() {
        scenarios.push((format!("Mix (seed {seed})"), mix));
    }

    for (round, (name, faults)) in scenarios.into_iter().enumerate() {
        // Act: load, the faults with their recoveries, load again.
        let prefix = format!("r{round}");
        let clients = Clients::start(CLIENTS, seed ^ round as u64, &prefix, &order_url);
        wait_until(STARTUP, "the clients' first orders", || {
            (clients.accepted() >= ORDERS_AFTER).then_some(())
        });
        let progress = Progress::watch(&cluster.database_url);
        let redeliveries = cluster.counter_total("consumer_redeliveries_total");
        let start = Instant::now();
        let scaled = if faults.len() > 1 { 0.5 } else { 1.0 };
        let mut done = vec![];
        for fault in &faults {
            eprintln!("cluster: {name}: {fault:?}");
            done.push(inject(&cluster, *fault, &mut rng, scaled));
            std::thread::sleep(Duration::from_millis(rng.u64(1_000..4_000)));
        }
        let fault_seconds = start.elapsed().as_secs_f64();
        let aftermath = Instant::now() + AFTERMATH;
        wait_until(STALL, "orders accepted after the recovery", || {
            (clients.accepted_since(aftermath) >= ORDERS_AFTER).then_some(())
        });
        let outcomes = clients.stop();
        assert_eq!(
            outcomes.not_accepted_since(aftermath),
            0,
            "{name}: orders refused or unanswered {AFTERMATH:?} after the recovery ({:?})",
            outcomes.by_status
        );

        // Assert: the books balance, over every order so far.
        assert_settled(&cluster, &initial_stock, STALL);
        // Recorded once is not enough: each email went out once, failovers
        // between sending and marking included (the log lines may trail the
        // marks by a moment).
        let recorded = cluster.count("SELECT count(*) FROM sent_emails");
        let sent = wait_until(Duration::from_secs(10), "the email lines", || {
            let sent = cluster.emails_sent();
            (sent >= recorded).then_some(sent)
        });
        assert_eq!(
            sent, recorded,
            "{name}: emails sent, against emails recorded"
        );
        let (orders_still, emails_still) = progress.stop();
        let figures = Figures {
            name,
            fault: done.join("; "),
            fault_seconds,
            orders_still,
            emails_still,
            intake_gap: outcomes.longest_gap_since(start),
            orders: outcomes.accepted.len(),
            not_accepted: outcomes.not_accepted(),
            unknown: outcomes.unknown.len(),
            redelivered: cluster.counter_total("consumer_redeliveries_total") - redeliveries,
        };
        everything.merge(outcomes);
        let unknown_stored = assert_outcomes(&cluster, &everything);
        eprintln!(
            "cluster: {} balanced: {} orders so far ({unknown_stored} of unknown outcome stored)",
            figures.name,
            cluster.count("SELECT count(*) FROM orders")
        );
        report.push(figures);
    }

    eprintln!(
        "cluster report: seed {seed}\n\
         | scenario | what was done | fault and recovery (s) | orders still (s) | emails still (s) | longest gap between 201s (s) | orders accepted | answers not 201 | outcome unknown | redeliveries |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for f in &report {
        eprintln!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |",
            f.name,
            f.fault,
            f.fault_seconds,
            f.orders_still.as_secs_f64(),
            f.emails_still.as_secs_f64(),
            f.intake_gap.as_secs_f64(),
            f.orders,
            f.not_accepted,
            f.unknown,
            f.redelivered
        );
    }
    let books = cluster.count("SELECT count(*) FROM orders WHERE status = 'confirmed'");
    eprintln!(
        "cluster: {} orders, {books} confirmed, every book balanced after every scenario",
        cluster.count("SELECT count(*) FROM orders")
    );
}
