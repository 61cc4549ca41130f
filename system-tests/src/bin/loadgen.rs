//! Load generator for `bench/run.sh`: N clients place orders for a while,
//! then it waits until the product service has applied them all.
//!
//! cargo run --release -p system-tests --bin loadgen -- \
//!     --order-url http://127.0.0.1:5002 --database-url postgres://... --clients 64 --seconds 10

use std::time::{Duration, Instant};

struct Args {
    order_url: String,
    database_url: String,
    clients: usize,
    seconds: u64,
    product_id: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        order_url: "http://127.0.0.1:5002".into(),
        database_url: "postgres://postgres@127.0.0.1:5432/ecommerce".into(),
        clients: 64,
        seconds: 10,
        product_id: "bench".into(),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let value = raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--order-url" => args.order_url = value,
            "--database-url" => args.database_url = value,
            "--clients" => args.clients = value.parse().expect("--clients takes a number"),
            "--seconds" => args.seconds = value.parse().expect("--seconds takes a number"),
            "--product-id" => args.product_id = value,
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn applied(database_url: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(database_url)
        .await
        .expect("the bench database");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) FROM processed_events",
        ))
        .await
        .unwrap()
        .unwrap();
    let count = row.try_get_by_index::<i64>(0).unwrap();
    db.close().await.ok();
    count
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let applied_before = rt.block_on(applied(&args.database_url));
    let url = format!("{}/create_order", args.order_url);
    let body = format!(r#"{{"product_id":"{}","quantity":1}}"#, args.product_id);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);

    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                // One keep-alive connection per client, as a real client would.
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let (mut latencies, mut failures) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let answer = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body.as_str());
                    match answer {
                        Ok(response) if response.status().as_u16() == 201 => {
                            latencies.push(sent.elapsed())
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for client in clients {
        let (l, f) = client.join().unwrap();
        latencies.extend(l);
        failures += f;
    }
    let intake = started.elapsed();
    latencies.sort();
    let accepted = latencies.len() as i64;

    // End to end: until the product service has applied every accepted order.
    let target = applied_before + accepted;
    let applied_at = loop {
        let now = rt.block_on(applied(&args.database_url));
        if now >= target {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < intake + Duration::from_secs(300),
            "applied only {now} of {target}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    println!("clients            {}", args.clients);
    println!(
        "accepted           {accepted} in {:.1} s, {failures} failed",
        intake.as_secs_f64()
    );
    println!(
        "accepted/s         {:.0}",
        accepted as f64 / intake.as_secs_f64()
    );
    println!(
        "latency ms         p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.95).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "applied end to end {accepted} in {:.1} s: {:.0}/s",
        applied_at.as_secs_f64(),
        accepted as f64 / applied_at.as_secs_f64()
    );
}
