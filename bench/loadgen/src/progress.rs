//! A progress line every second (rate, errors, backlog where known), the
//! per-second samples kept for the throughput chart, and the flag Ctrl-C sets
//! so that every phase stops early and scratch databases and vhosts are
//! still removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every phase to stop as soon as it can.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Counters a phase updates and the ticker reads.
#[derive(Debug, Default)]
pub struct Meter {
    done: AtomicU64,
    errors: AtomicU64,
    /// Work known to be waiting; `u64::MAX` while unknown.
    backlog: AtomicU64,
}

impl Meter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            backlog: AtomicU64::new(u64::MAX),
            ..Self::default()
        })
    }

    pub fn done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_done(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }

    pub fn set_backlog(&self, n: u64) {
        self.backlog.store(n, Ordering::Relaxed);
    }

    pub fn totals(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    fn backlog(&self) -> Option<u64> {
        match self.backlog.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }
}

/// One second of a phase (the last one may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// End of the interval, seconds since the phase started.
    pub t_s: f64,
    /// Completed operations per second in the interval.
    pub rate: f64,
    /// Errors in the interval.
    pub errors: u64,
    pub backlog: Option<u64>,
}

/// The progress line: `[label  12s]  1020/s orders  errors 3  backlog 40`.
pub fn progress_line(label: &str, unit: &str, sample: &Sample, errors_total: u64) -> String {
    let mut line = format!(
        "[{label} {:>4.0}s] {:>8.0}/s {unit}  errors {errors_total}",
        sample.t_s, sample.rate
    );
    if let Some(backlog) = sample.backlog {
        line.push_str(&format!("  backlog {backlog}"));
    }
    line
}

/// A thread that samples a [`Meter`] every second and prints the line to
/// stderr (unless quiet).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Ticker {
    /// `backlog` is asked at each tick (with the time since the start) and
    /// wins over the meter's own backlog when it answers.
    pub fn start(
        label: &str,
        unit: &'static str,
        meter: Arc<Meter>,
        quiet: bool,
        backlog: impl Fn(Duration, &Meter) -> Option<u64> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let label = label.to_string();
        // What the meter counted before the start is not this phase's.
        let baseline = meter.totals();
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let (mut last_done, mut last_errors) = baseline;
                let (mut samples, mut last_t) = (Vec::new(), Duration::ZERO);
                let mut next_tick = Duration::from_secs(1);
                loop {
                    let finished = stop.load(Ordering::SeqCst);
                    let elapsed = started.elapsed();
                    if !finished && elapsed < next_tick {
                        std::thread::sleep((next_tick - elapsed).min(Duration::from_millis(50)));
                        continue;
                    }
                    let interval = elapsed - last_t;
                    // A final sliver says little about a rate: drop it.
                    if !finished || interval >= Duration::from_millis(200) {
                        let (done, errors) = meter.totals();
                        let sample = Sample {
                            t_s: elapsed.as_secs_f64(),
                            rate: (done - last_done) as f64 / interval.as_secs_f64(),
                            errors: errors - last_errors,
                            backlog: backlog(elapsed, &meter).or_else(|| meter.backlog()),
                        };
                        if !quiet && !finished {
                            eprintln!("{}", progress_line(&label, unit, &sample, errors));
                        }
                        samples.push(sample);
                        (last_done, last_errors, last_t) = (done, errors, elapsed);
                    }
                    if finished {
                        return samples;
                    }
                    next_tick += Duration::from_secs(1);
                }
            })
        };
        Self { stop, handle }
    }

    /// Stops the ticker and returns its samples.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_rate_errors_and_backlog_when_known() {
        let sample = Sample {
            t_s: 12.0,
            rate: 1020.4,
            errors: 1,
            backlog: Some(40),
        };
        assert_eq!(
            progress_line("intake closed", "orders", &sample, 3),
            "[intake closed   12s]     1020/s orders  errors 3  backlog 40"
        );
        let unknown = Sample {
            backlog: None,
            ..sample
        };
        assert!(!progress_line("raw", "commits", &unknown, 0).contains("backlog"));
    }

    #[test]
    fn counts_before_the_start_are_not_in_the_first_second() {
        let meter = Meter::new();
        meter.set_done(4_000);
        let ticker = Ticker::start("test", "ops", meter.clone(), true, |_, _| None);
        std::thread::sleep(Duration::from_millis(300));
        meter.set_done(4_030);
        let samples = ticker.finish();
        let counted: f64 = samples.iter().map(|s| s.rate * s.t_s).sum();
        assert!((counted - 30.0).abs() < 1.0, "{samples:?}");
    }

    #[test]
    fn the_ticker_samples_every_second_and_accounts_for_everything() {
        let meter = Meter::new();
        let ticker = Ticker::start("test", "ops", meter.clone(), true, |_, _| Some(7));
        meter.done(500);
        std::thread::sleep(Duration::from_millis(1_100));
        meter.done(100);
        meter.error();
        std::thread::sleep(Duration::from_millis(1_000));
        let samples = ticker.finish();

        assert!(samples.len() >= 2, "{samples:?}");
        // rate × interval, summed, gives back every operation.
        let mut last_t = 0.0;
        let done: f64 = samples
            .iter()
            .map(|s| {
                let n = s.rate * (s.t_s - last_t);
                last_t = s.t_s;
                n
            })
            .sum();
        assert!((done - 600.0).abs() < 1.0, "{samples:?}");
        assert_eq!(samples.iter().map(|s| s.errors).sum::<u64>(), 1);
        assert!(samples.iter().all(|s| s.backlog == Some(7)));
    }
}
