//! `intake`: how fast the order service accepts orders, closed loop (each
//! client sends its next order when the previous one is answered) or open
//! loop (orders sent on a schedule, latency counted from when each was due).

use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::orders::{Answer, OrderClient, OrderSpec};
use crate::progress::{Meter, Sample, Ticker, stop_requested};
use crate::schedule::Schedule;
use crate::stats::{self, Failures, LatencySummary, Percentile};

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed { clients: u32 },
    Open { schedule: Schedule },
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub mode: Mode,
    pub seconds: u64,
    /// Open loop: how long after the end orders still due may go out; the
    /// rest are counted as unsent.
    pub drain: Duration,
    pub spec: OrderSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntakeReport {
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Clients (closed loop) or connections (open loop).
    pub clients: u32,
    /// Open loop: orders per second offered.
    pub target_rate: Option<f64>,
    pub seconds: u64,
    /// From the start to the last answer.
    pub elapsed_s: f64,
    pub sent: u64,
    pub accepted: u64,
    pub accepted_per_s: f64,
    /// Open loop: orders due but never sent (the drain time ran out, or the
    /// run was interrupted).
    pub unsent: u64,
    /// Latency of the `201`s: from the send (closed loop) or from when the
    /// order was due (open loop).
    pub latency: LatencySummary,
    pub percentiles: Vec<Percentile>,
    /// Every answer but `201`, by status, and every request with no answer.
    pub failures: Failures,
    pub timeline: Vec<Sample>,
}

pub struct IntakeRun {
    pub report: IntakeReport,
    pub histogram: Histogram<u64>,
}

struct Tally {
    histogram: Histogram<u64>,
    failures: Failures,
    sent: u64,
    accepted: u64,
    unsent: u64,
    last_answer: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            histogram: stats::new_histogram(),
            failures: Failures::default(),
            sent: 0,
            accepted: 0,
            unsent: 0,
            last_answer: None,
        }
    }

    fn count(&mut self, answer: Answer, latency: Duration, meter: &Meter) {
        self.sent += 1;
        self.last_answer = Some(Instant::now());
        match answer {
            Answer::Accepted(_) => {
                self.accepted += 1;
                stats::record(&mut self.histogram, latency);
                meter.done(1);
            }
            Answer::Refused(status) => {
                self.failures.status(status);
                meter.error();
            }
            Answer::Transport(kind) => {
                self.failures.transport(kind);
                meter.error();
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        stats::merge(&mut self.histogram, &other.histogram);
        self.failures.merge(&other.failures);
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.unsent += other.unsent;
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

pub fn run(order_url: &str, config: &IntakeConfig, quiet: bool) -> anyhow::Result<IntakeRun> {
    let (clients, label, schedule) = match config.mode {
        Mode::Closed { clients } => (clients, "intake closed", None),
        Mode::Open { schedule } => (schedule.connections(), "intake open", Some(schedule)),
    };
    let run_for = Duration::from_secs(config.seconds);
    let meter = Meter::new();
    // Every client opens its connection; then the clock starts for all.
    let ready = Arc::new(Barrier::new(clients as usize + 1));
    let start_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());

    let workers: Vec<_> = (0..clients)
        .map(|k| {
            let (ready, start_at, meter) = (ready.clone(), start_at.clone(), meter.clone());
            let (spec, order_url, drain) =
                (config.spec.clone(), order_url.to_string(), config.drain);
            std::thread::spawn(move || {
                let client = OrderClient::new(&order_url);
                client.warm_up();
                ready.wait();
                ready.wait();
                let start = *start_at.get().expect("set before the second barrier");
                match schedule {
                    None => closed_loop(&client, &spec, k, clients, start + run_for, &meter),
                    Some(schedule) => open_loop(
                        &client,
                        &spec,
                        k,
                        &schedule,
                        start,
                        start + run_for + drain,
                        &meter,
                    ),
                }
            })
        })
        .collect();

    ready.wait();
    let start = Instant::now();
    let _ = start_at.set(start);
    let ticker = Ticker::start(
        label,
        "orders accepted",
        meter.clone(),
        quiet,
        move |elapsed, meter| {
            let schedule = schedule?;
            let (done, errors) = meter.totals();
            Some(schedule.due_by(elapsed).saturating_sub(done + errors))
        },
    );
    ready.wait();

    let mut tally = Tally::new();
    for worker in workers {
        tally.merge(
            worker
                .join()
                .map_err(|_| anyhow!("a client thread panicked"))?,
        );
    }
    let timeline = ticker.finish();
    let elapsed = tally
        .last_answer
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
    let report = IntakeReport {
        mode: if schedule.is_some() { "open" } else { "closed" },
        clients,
        target_rate: schedule.map(|s| s.rate()),
        seconds: config.seconds,
        elapsed_s: elapsed.as_secs_f64(),
        sent: tally.sent,
        accepted: tally.accepted,
        accepted_per_s: per_second(tally.accepted, elapsed),
        unsent: tally.unsent,
        latency: LatencySummary::of(&tally.histogram),
        percentiles: stats::percentiles(&tally.histogram, &stats::REPORTED_PERCENTILES),
        failures: tally.failures,
        timeline,
    };
    Ok(IntakeRun {
        report,
        histogram: tally.histogram,
    })
}

pub fn per_second(n: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        n as f64 / elapsed.as_secs_f64()
    }
}

fn closed_loop(
    client: &OrderClient,
    spec: &OrderSpec,
    k: u32,
    clients: u32,
    deadline: Instant,
    meter: &Meter,
) -> Tally {
    let mut tally = Tally::new();
    let mut i = u64::from(k);
    while !stop_requested() && Instant::now() < deadline {
        let sent = Instant::now();
        let answer = client.place(spec.body(i), spec.idempotency_keys());
        tally.count(answer, sent.elapsed(), meter);
        i += u64::from(clients);
    }
    tally
}

fn open_loop(
    client: &OrderClient,
    spec: &OrderSpec,
    k: u32,
    schedule: &Schedule,
    start: Instant,
    hard_deadline: Instant,
    meter: &Meter,
) -> Tally {
    let mut tally = Tally::new();
    let mut orders = schedule.of_connection(k);
    while let Some(i) = orders.next() {
        let due = start + schedule.due(i);
        let now = Instant::now();
        if stop_requested() || now >= hard_deadline {
            tally.unsent += 1 + orders.count() as u64;
            break;
        }
        if now < due {
            std::thread::sleep(due - now);
        }
        let answer = client.place(spec.body(i), spec.idempotency_keys());
        tally.count(answer, due.elapsed(), meter);
    }
    tally
}

/// The open loop's default rate: 75 % of what the closed loop accepted,
/// rounded to a figure that reads as chosen (tens above 100/s).
pub fn default_rate(closed_accepted_per_s: f64) -> f64 {
    let rate = closed_accepted_per_s * 0.75;
    if rate >= 100.0 {
        (rate / 10.0).round() * 10.0
    } else {
        rate.round().max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_open_loop_rate_is_three_quarters_of_the_closed_loop() {
        assert_eq!(default_rate(1_020.0), 770.0);
        assert_eq!(default_rate(4_000.0), 3_000.0);
        assert_eq!(default_rate(40.0), 30.0);
        assert_eq!(default_rate(0.5), 1.0);
    }
}
