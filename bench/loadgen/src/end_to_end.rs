//! `end-to-end`: a burst of N orders, then the time until every accepted
//! order is `confirmed` or `rejected`, and each order's accept-to-final
//! latency read from its own timestamps (`created_at` → `updated_at`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::db::{self, OrderTimes};
use crate::intake::per_second;
use crate::orders::{Answer, OrderClient, OrderSpec};
use crate::progress::{Meter, Sample, Ticker, stop_requested};
use crate::stats::{self, Failures, LatencySummary, Percentile};

#[derive(Debug, Clone)]
pub struct EndToEndConfig {
    pub orders: u64,
    pub clients: u32,
    /// Give up waiting for final statuses after this long.
    pub timeout: Duration,
    pub spec: OrderSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndToEndReport {
    pub orders: u64,
    pub products: usize,
    pub clients: u32,
    pub accepted: u64,
    /// Every answer but `201`, and every request with no answer.
    pub failures: Failures,
    /// `201`s whose body had no readable `order_id` (not followed).
    pub accepted_without_id: u64,
    /// Sending the burst, from the first send to the last answer.
    pub burst_s: f64,
    pub burst_accepted_per_s: f64,
    /// From the first send to the last order's `updated_at`.
    pub time_to_final_s: f64,
    /// Accepted orders over `time_to_final_s`.
    pub final_per_s: f64,
    pub confirmed: u64,
    pub rejected: u64,
    /// Accepted orders still pending when waiting gave up.
    pub still_pending: u64,
    /// `updated_at − created_at` of every final order.
    pub accept_to_final: LatencySummary,
    pub percentiles: Vec<Percentile>,
    /// Orders accepted per second while the burst was sent.
    pub accepted_timeline: Vec<Sample>,
    /// Orders reaching their final status per second (from `updated_at`).
    pub final_timeline: Vec<Sample>,
}

pub struct EndToEndRun {
    pub report: EndToEndReport,
    pub histogram: Histogram<u64>,
}

struct Burst {
    ids: Vec<Uuid>,
    failures: Failures,
    without_id: u64,
    last_answer: Option<Instant>,
}

pub fn run(
    rt: &Runtime,
    order_url: &str,
    database: &DatabaseConnection,
    config: &EndToEndConfig,
    quiet: bool,
) -> anyhow::Result<EndToEndRun> {
    rt.block_on(db::check_products(database, config.spec.products()))?;

    let meter = Meter::new();
    let next = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(config.clients as usize + 1));
    let workers: Vec<_> = (0..config.clients)
        .map(|_| {
            let (next, ready, meter) = (next.clone(), ready.clone(), meter.clone());
            let (spec, order_url, orders) =
                (config.spec.clone(), order_url.to_string(), config.orders);
            std::thread::spawn(move || {
                let client = OrderClient::new(&order_url);
                client.warm_up();
                ready.wait();
                let mut burst = Burst {
                    ids: Vec::new(),
                    failures: Failures::default(),
                    without_id: 0,
                    last_answer: None,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= orders || stop_requested() {
                        return burst;
                    }
                    let answer = client.place(spec.body(i), spec.idempotency_keys());
                    burst.last_answer = Some(Instant::now());
                    match answer {
                        Answer::Accepted(Some(id)) => {
                            burst.ids.push(id);
                            meter.done(1);
                        }
                        Answer::Accepted(None) => {
                            burst.without_id += 1;
                            meter.done(1);
                        }
                        Answer::Refused(status) => {
                            burst.failures.status(status);
                            meter.error();
                        }
                        Answer::Transport(kind) => {
                            burst.failures.transport(kind);
                            meter.error();
                        }
                    }
                }
            })
        })
        .collect();

    ready.wait();
    let (start, wall_start) = (Instant::now(), epoch_seconds(SystemTime::now()));
    let ticker = Ticker::start(
        "end-to-end burst",
        "orders accepted",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    let mut burst = Burst {
        ids: Vec::new(),
        failures: Failures::default(),
        without_id: 0,
        last_answer: None,
    };
    for worker in workers {
        let part = worker
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))?;
        burst.ids.extend(part.ids);
        burst.failures.merge(&part.failures);
        burst.without_id += part.without_id;
        burst.last_answer = burst.last_answer.max(part.last_answer);
    }
    let accepted_timeline = ticker.finish();
    let burst_time = burst
        .last_answer
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
    let accepted = burst.ids.len() as u64 + burst.without_id;

    // Wait until every accepted order is final. Those final during the
    // burst are counted before the ticker starts, so its first second shows
    // the rate after the burst, not everything before it.
    let meter = Meter::new();
    let poll = |pending: &[Uuid]| -> anyhow::Result<Vec<Uuid>> {
        let pending = rt.block_on(db::still_pending(database, pending))?;
        meter.set_done((burst.ids.len() - pending.len()) as u64);
        meter.set_backlog(pending.len() as u64);
        Ok(pending)
    };
    let mut pending = poll(&burst.ids)?;
    let ticker = Ticker::start(
        "end-to-end final",
        "orders final",
        meter.clone(),
        quiet,
        |_, _| None,
    );
    while !pending.is_empty() && !stop_requested() && start.elapsed() < config.timeout {
        std::thread::sleep(Duration::from_millis(100));
        pending = poll(&pending)?;
    }
    ticker.finish();
    if !pending.is_empty() && !stop_requested() {
        eprintln!(
            "warning: {} of {} accepted orders were still pending after {} s",
            pending.len(),
            burst.ids.len(),
            config.timeout.as_secs()
        );
    }

    let times = rt.block_on(db::order_times(database, &burst.ids))?;
    let outcome = outcome(wall_start, &times);
    let time_to_final = if pending.is_empty() {
        outcome.last_final_s
    } else {
        start.elapsed().as_secs_f64()
    };
    let report = EndToEndReport {
        orders: config.orders,
        products: config.spec.products().len(),
        clients: config.clients,
        accepted,
        failures: burst.failures,
        accepted_without_id: burst.without_id,
        burst_s: burst_time.as_secs_f64(),
        burst_accepted_per_s: per_second(accepted, burst_time),
        time_to_final_s: time_to_final,
        final_per_s: if time_to_final > 0.0 {
            (outcome.confirmed + outcome.rejected) as f64 / time_to_final
        } else {
            0.0
        },
        confirmed: outcome.confirmed,
        rejected: outcome.rejected,
        still_pending: pending.len() as u64,
        accept_to_final: LatencySummary::of(&outcome.histogram),
        percentiles: stats::percentiles(&outcome.histogram, &stats::REPORTED_PERCENTILES),
        accepted_timeline,
        final_timeline: outcome.timeline,
    };
    Ok(EndToEndRun {
        report,
        histogram: outcome.histogram,
    })
}

pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the orders' rows say.
#[derive(Debug)]
pub struct Outcome {
    pub confirmed: u64,
    pub rejected: u64,
    /// Accept-to-final latencies of the final orders.
    pub histogram: Histogram<u64>,
    /// Seconds from `start` to the last `updated_at` of a final order.
    pub last_final_s: f64,
    /// Final orders per whole second since `start`.
    pub timeline: Vec<Sample>,
}

/// Tallies the rows of orders sent from `start` (seconds since the epoch).
pub fn outcome(start: f64, times: &[OrderTimes]) -> Outcome {
    let mut histogram = stats::new_histogram();
    let (mut confirmed, mut rejected, mut last_final_s) = (0, 0, 0.0f64);
    let mut per_second: Vec<u64> = Vec::new();
    for order in times {
        match order.status.as_str() {
            "confirmed" => confirmed += 1,
            "rejected" => rejected += 1,
            _ => continue,
        }
        let latency = (order.updated_at - order.created_at).max(0.0);
        stats::record(&mut histogram, Duration::from_secs_f64(latency));
        let since_start = (order.updated_at - start).max(0.0);
        last_final_s = last_final_s.max(since_start);
        let second = since_start.floor() as usize;
        if per_second.len() <= second {
            per_second.resize(second + 1, 0);
        }
        per_second[second] += 1;
    }
    let timeline = per_second
        .iter()
        .enumerate()
        .map(|(second, &n)| Sample {
            t_s: (second + 1) as f64,
            rate: n as f64,
            errors: 0,
            backlog: None,
        })
        .collect();
    Outcome {
        confirmed,
        rejected,
        histogram,
        last_final_s,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str, created_at: f64, updated_at: f64) -> OrderTimes {
        OrderTimes {
            status: status.to_string(),
            created_at,
            updated_at,
        }
    }

    #[test]
    fn outcome_counts_final_orders_and_their_latency() {
        let start = 1_000.0;
        let times = [
            order("confirmed", 1_000.1, 1_000.2),
            order("confirmed", 1_000.5, 1_001.5),
            order("rejected", 1_001.0, 1_002.25),
            order("pending", 1_001.0, 1_001.0),
        ];
        let outcome = outcome(start, &times);

        assert_eq!((outcome.confirmed, outcome.rejected), (2, 1));
        assert_eq!(outcome.histogram.len(), 3, "pending orders have no latency");
        let summary = LatencySummary::of(&outcome.histogram);
        assert!((summary.max_ms - 1_250.0).abs() < 2.0, "{summary:?}");
        assert!((summary.p50_ms - 1_000.0).abs() < 2.0, "{summary:?}");
        assert!((outcome.last_final_s - 2.25).abs() < 1e-9);
        let per_second: Vec<(f64, f64)> =
            outcome.timeline.iter().map(|s| (s.t_s, s.rate)).collect();
        assert_eq!(per_second, [(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]);
    }

    #[test]
    fn no_final_order_gives_an_empty_outcome() {
        let outcome = outcome(0.0, &[order("pending", 1.0, 1.0)]);
        assert_eq!((outcome.confirmed, outcome.rejected), (0, 0));
        assert!(outcome.timeline.is_empty());
        assert_eq!(outcome.last_final_s, 0.0);
    }
}
