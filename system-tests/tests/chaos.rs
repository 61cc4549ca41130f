//! The chaos test: for a fixed time, clients keep placing orders (several
//! products, some unfillable, some unknown, some with Idempotency-Keys that
//! are retried) while a seeded random schedule SIGKILLs or SIGTERMs any
//! service, restarts RabbitMQ, and cuts the database connection of any
//! service for 1–90 s (at most half the run, so that a short run is not one
//! long cut of the order service's database). Faults start once the clients
//! have had an order accepted. Once every fault is healed, the books must balance
//! exactly (see `System::assert_settled`).
//!
//! CI runs it for 60 s. By hand: `CHAOS_SECONDS=600 cargo test -p system-tests
//! --test chaos -- --nocapture`; replay a run with `CHAOS_SEED=<seed>` (the
//! schedule is the seed's; the interleaving with the clients is not).
//! RabbitMQ is restarted for every vhost, so this is a test binary of its
//! own: cargo runs test binaries one at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use system_tests::clients::{CATALOGUE, Clients, assert_outcomes};
use system_tests::{
    DEMO_STOCK, Options, STARTUP, STOP, SeedOnFailure, Service, System, env_u64, rabbitmqctl,
};
use testkit::wait_until;

const CLIENTS: usize = 3;
const LONGEST_CUT: u64 = 90;
/// Once every fault is healed, the backlog must keep shrinking: the test
/// fails if no order, event or email moves on for this long.
const STALL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill(Service),
    Term(Service),
    BrokerRestart,
    CutDatabase(Service),
}

fn any_service(rng: &mut fastrand::Rng) -> Service {
    Service::ALL[rng.usize(0..Service::ALL.len())]
}

#[test]
fn every_accepted_order_reaches_a_final_state_whatever_fails() {
    // Arrange
    let seconds = env_u64("CHAOS_SECONDS").unwrap_or(60);
    let report_seed = SeedOnFailure::from_env("chaos test", "CHAOS_SEED");
    let seed = report_seed.seed;
    eprintln!("chaos: seed {seed}, {seconds} s");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut system = System::start_with(Options {
        proxy_databases: true,
        ..Options::default()
    });
    for (id, stock) in CATALOGUE {
        system.add_product(id, stock);
    }
    let initial_stock: Vec<_> = DEMO_STOCK.iter().chain(CATALOGUE.iter()).copied().collect();
    let order_url = format!("{}/create_order", system.order_url);
    let clients = Clients::start(CLIENTS, seed, "chaos", &order_url);

    // Act: faults until the deadline, then heal everything.
    wait_until(STARTUP, "the clients' first accepted order", || {
        (clients.accepted() > 0).then_some(())
    });
    let longest_cut = LONGEST_CUT.min(seconds / 2).max(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    let mut cut_until: BTreeMap<&str, Instant> = BTreeMap::new();
    let mut exited_by_themselves = 0;
    while Instant::now() < deadline {
        let now = Instant::now();
        for service in Service::ALL {
            if cut_until
                .get(service.name())
                .is_some_and(|until| *until <= now)
            {
                system.proxy(service).restore();
                cut_until.remove(service.name());
            }
            // A service that stopped by itself is restarted, as an
            // orchestrator would.
            let process = system.service(service);
            if process.reap().is_some() {
                exited_by_themselves += 1;
                process.restart();
            }
        }
        let fault = match rng.u8(0..100) {
            0..30 => Fault::Kill(any_service(&mut rng)),
            30..50 => Fault::Term(any_service(&mut rng)),
            50..65 => Fault::BrokerRestart,
            _ => Fault::CutDatabase(any_service(&mut rng)),
        };
        *injected
            .entry(format!("{fault:?}").split('(').next().unwrap().to_string())
            .or_default() += 1;
        eprintln!(
            "chaos: {:>4} s {fault:?}",
            seconds - deadline.saturating_duration_since(now).as_secs()
        );
        match fault {
            Fault::Kill(service) => {
                system.service(service).kill();
                std::thread::sleep(Duration::from_millis(rng.u64(200..3_000)));
                system.service(service).restart();
            }
            Fault::Term(service) => {
                let process = system.service(service);
                if process.is_running() {
                    assert_eq!(
                        process.terminate(STOP),
                        Some(0),
                        "{service:?} stops cleanly"
                    );
                }
                process.ensure_running();
            }
            Fault::BrokerRestart => {
                rabbitmqctl(&["stop_app"]);
                std::thread::sleep(Duration::from_millis(rng.u64(1_000..5_000)));
                rabbitmqctl(&["start_app"]);
                rabbitmqctl(&["await_startup"]);
            }
            Fault::CutDatabase(service) => {
                if !cut_until.contains_key(service.name()) {
                    system.proxy(service).cut();
                    let length = Duration::from_secs(rng.u64(1..=longest_cut));
                    cut_until.insert(service.name(), Instant::now() + length);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.u64(1_000..5_000)));
    }
    for service in Service::ALL {
        system.proxy(service).restore();
        system.service(service).ensure_running();
    }
    let outcomes = clients.stop();

    // Assert: the books balance.
    let books = system.assert_settled(&initial_stock, STALL);
    let unknown_stored = assert_outcomes(&system, &outcomes);
    assert!(!outcomes.accepted.is_empty(), "orders were accepted");

    let stock: Vec<_> = initial_stock
        .iter()
        .map(|(id, _)| {
            let stock = system.count(&format!(
                "SELECT stock::bigint FROM products WHERE id = '{id}'"
            ));
            format!("{id}: {stock}")
        })
        .collect();
    eprintln!(
        "chaos report: seed {seed}, {seconds} s; faults {injected:?}; services that exited by themselves: {exited_by_themselves}\n\
         orders: {} accepted, {} refused (nothing ordered), {} unknown to the client ({unknown_stored} of them stored), {} key replays; answers {:?}\n\
         books: {} orders, {} confirmed, {} rejected; final stock {}",
        outcomes.accepted.len(),
        outcomes.refused.len(),
        outcomes.unknown.len(),
        outcomes.replays,
        outcomes.by_status,
        books.orders,
        books.confirmed,
        books.rejected,
        stock.join(", "),
    );
}
