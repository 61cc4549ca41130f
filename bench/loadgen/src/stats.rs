//! Latency histograms (HDR, microseconds), their summaries, and the count of
//! every answer that was not a `201`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram records (an hour, in microseconds); longer
/// ones are recorded as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Percentiles reported in the JSON, next to the summary.
pub const REPORTED_PERCENTILES: [f64; 9] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

/// A histogram of latencies in microseconds, 1 µs to an hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// Records one latency, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
    histogram.saturating_record(micros.clamp(1, MAX_LATENCY_US));
}

/// Adds `other` into `into` (both from [`new_histogram`], so the ranges match).
pub fn merge(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    into.add(other)
        .expect("histograms from new_histogram have the same range");
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// The figures quoted for a latency distribution, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self {
                count: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
            };
        }
        let at = |q: f64| ms(histogram.value_at_quantile(q));
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1_000.0,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(histogram.max()),
        }
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            format_ms(self.p50_ms),
            format_ms(self.p90_ms),
            format_ms(self.p99_ms),
            format_ms(self.p999_ms),
            format_ms(self.max_ms),
        )
    }
}

/// A latency for people: three significant figures or so, seconds past 10 s.
pub fn format_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// One point of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentile {
    pub percentile: f64,
    pub ms: f64,
}

/// The latency at each of `percentiles` (0–100).
pub fn percentiles(histogram: &Histogram<u64>, percentiles: &[f64]) -> Vec<Percentile> {
    if histogram.is_empty() {
        return Vec::new();
    }
    percentiles
        .iter()
        .map(|&p| Percentile {
            percentile: p,
            ms: ms(histogram.value_at_percentile(p)),
        })
        .collect()
}

/// What became of requests that were not answered `201`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Failures {
    /// Answers by HTTP status (every status but 201).
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer, by kind (refused, timeout, ...).
    pub transport: BTreeMap<String, u64>,
}

impl Failures {
    pub fn status(&mut self, status: u16) {
        *self.by_status.entry(status).or_default() += 1;
    }

    pub fn transport(&mut self, kind: impl Into<String>) {
        *self.transport.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Failures) {
        for (status, n) in &other.by_status {
            *self.by_status.entry(*status).or_default() += n;
        }
        for (kind, n) in &other.transport {
            *self.transport.entry(kind.clone()).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.transport.values().sum::<u64>()
    }
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total() == 0 {
            return f.write_str("none");
        }
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect();
        let transport: Vec<String> = self
            .transport
            .iter()
            .map(|(kind, n)| format!("{n} × {kind}"))
            .collect();
        match (statuses.is_empty(), transport.is_empty()) {
            (false, true) => write!(f, "{}", statuses.join(", ")),
            (true, false) => write!(f, "transport errors: {}", transport.join(", ")),
            _ => write!(
                f,
                "{}; transport errors: {}",
                statuses.join(", "),
                transport.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(millis: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for m in millis {
            record(&mut h, Duration::from_millis(m));
        }
        h
    }

    #[test]
    fn summary_of_one_to_a_thousand_ms() {
        let summary = LatencySummary::of(&histogram_of(1..=1000));

        assert_eq!(summary.count, 1000);
        // 3 significant digits: within 0.1 % of the exact order statistic.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p90_ms, 900.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.p999_ms, 999.0), "{summary:?}");
        assert!(close(summary.max_ms, 1000.0), "{summary:?}");
        assert!(close(summary.mean_ms, 500.5), "{summary:?}");
    }

    #[test]
    fn summary_formats_each_percentile_with_units() {
        let summary = LatencySummary {
            count: 5,
            mean_ms: 3.0,
            p50_ms: 1.234,
            p90_ms: 45.67,
            p99_ms: 175.4,
            p999_ms: 950.0,
            max_ms: 12_345.0,
        };
        assert_eq!(
            summary.to_string(),
            "p50 1.23 ms  p90 45.7 ms  p99 175 ms  p99.9 950 ms  max 12.3 s"
        );
    }

    #[test]
    fn an_empty_histogram_says_so_instead_of_zeros() {
        let summary = LatencySummary::of(&new_histogram());
        assert_eq!(summary.count, 0);
        assert_eq!(summary.to_string(), "no samples");
        assert!(percentiles(&new_histogram(), &REPORTED_PERCENTILES).is_empty());
    }

    #[test]
    fn latencies_beyond_the_range_are_clamped_not_lost() {
        let mut h = new_histogram();
        record(&mut h, Duration::from_secs(7_200));
        record(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= MAX_LATENCY_US);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn merged_histograms_count_both() {
        let mut a = histogram_of([1, 2, 3]);
        merge(&mut a, &histogram_of([100]));
        assert_eq!(a.len(), 4);
        assert!((LatencySummary::of(&a).max_ms - 100.0).abs() < 0.1);
    }

    #[test]
    fn percentiles_are_reported_in_order() {
        let points = percentiles(&histogram_of(1..=100), &[50.0, 99.0, 100.0]);
        let ms: Vec<f64> = points.iter().map(|p| p.ms.round()).collect();
        assert_eq!(ms, [50.0, 99.0, 100.0]);
    }

    #[test]
    fn failures_count_every_status_and_transport_error() {
        let mut a = Failures::default();
        a.status(503);
        a.status(503);
        a.status(400);
        let mut b = Failures::default();
        b.transport("connection refused");
        b.status(503);
        a.merge(&b);

        assert_eq!(a.total(), 5);
        assert_eq!(a.by_status[&503], 3);
        assert_eq!(
            a.to_string(),
            "1 × 400, 3 × 503; transport errors: 1 × connection refused"
        );
        assert_eq!(Failures::default().to_string(), "none");
        assert_eq!(
            b.to_string(),
            "1 × 503; transport errors: 1 × connection refused"
        );
    }
}
