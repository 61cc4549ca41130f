//! `GET /metrics`: the service's figures in the Prometheus text format.
//! HTTP requests are counted as they are answered; everything else is read
//! when scraped, from the counters the consumers and the relay keep anyway
//! and from the outbox table, so the figures cannot drift from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use actix_web::{HttpResponse, web};
use futures_util::future::BoxFuture;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use foundation::coalesce::Coalesced;
use messaging::consumer::{ConsumerContext, ConsumerStatsByQueue};
use messaging::outbox::Outbox;
use messaging::outbox::relay::{GetRelayCounters, OutboxRelay};

/// How long a scrape waits for the relay or the database.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// Latency buckets, in seconds: intake answers in milliseconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0,
];

/// Buckets of work that crosses the broker: milliseconds when all is well,
/// minutes behind a backlog or an outage (which a 10 s top bucket would
/// flatten into "10 s").
const PIPELINE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// Counter values read when scraped (from a domain actor, say): each
/// series as its label values, in the order of the family's label names,
/// and its value; `None` when they could not be read.
pub type CounterSource<const LABELS: usize> =
    Arc<dyn Fn() -> BoxFuture<'static, Option<Vec<([&'static str; LABELS], u64)>>> + Send + Sync>;

/// Reads a labelled counter family (from a [`CounterSource`]) when scraped.
type Watched = Arc<dyn Fn() -> BoxFuture<'static, Option<IntCounterVec>> + Send + Sync>;

/// The relay whose counters, and the outbox whose backlog, are reported.
type WatchedRelay = (Addr<OutboxRelay>, Outbox);

/// The service's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    kept: Arc<Kept>,
    relay: Arc<Mutex<Option<WatchedRelay>>>,
    counters: Arc<Mutex<Vec<Watched>>>,
    /// Scrapes arriving together share one reading of the actors and the
    /// outbox.
    rendering: Arc<Coalesced<String>>,
}

/// The metrics observed as things happen, kept between scrapes: the HTTP
/// requests, and the histograms services ask for ([`Metrics::histogram`]).
struct Kept {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("a valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to answering it",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("a valid metric");
        let registry = Registry::new();
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(latency.clone()))
            .expect("registered once");
        Self {
            kept: Arc::new(Kept {
                registry,
                requests,
                latency,
            }),
            relay: Arc::default(),
            counters: Arc::default(),
            rendering: Arc::default(),
        }
    }
}

impl Metrics {
    /// Reports the relay's counters and the outbox backlog too.
    pub fn watch_relay(&self, relay: Addr<OutboxRelay>, outbox: Outbox) {
        *self.relay.lock().expect("never poisoned") = Some((relay, outbox));
    }

    /// Reports the counters `source` reads as `name{labels[0]="..",..}`.
    pub fn watch_counters<const LABELS: usize>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: [&'static str; LABELS],
        source: CounterSource<LABELS>,
    ) {
        let read: Watched = Arc::new(move || {
            let values = source();
            Box::pin(async move {
                let family =
                    IntCounterVec::new(Opts::new(name, help), &labels).expect("a valid metric");
                for (label_values, value) in values.await? {
                    family.with_label_values(&label_values).inc_by(value);
                }
                Some(family)
            })
        });
        self.counters.lock().expect("never poisoned").push(read);
    }

    /// A histogram of seconds of work that crosses the broker, observed by
    /// the service itself and reported with the rest (an order's time from
    /// accepted to final).
    pub fn pipeline_histogram(&self, name: &str, help: &str) -> Histogram {
        let histogram =
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(PIPELINE_BUCKETS.to_vec()))
                .expect("a valid metric");
        self.kept
            .registry
            .register(Box::new(histogram.clone()))
            .expect("each histogram registered once");
        histogram
    }

    /// Counts one answered request; `route` is the route's pattern
    /// (`/orders/{id}`, or `unmatched`), so ids do not multiply the series.
    /// Every label takes its values from a fixed set: a client inventing
    /// methods or paths cannot grow the series.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.kept
            .requests
            .with_label_values(&[method, route, status_label(status)])
            .inc();
        self.kept
            .latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Every figure, in the Prometheus text format; a caller arriving
    /// while a rendering runs gets that rendering.
    pub async fn render(&self, consumers: &ConsumerContext) -> String {
        let (metrics, consumers) = (self.clone(), consumers.clone());
        self.rendering
            .run(move || Box::pin(async move { metrics.render_now(&consumers).await }))
            .await
    }

    async fn render_now(&self, consumers: &ConsumerContext) -> String {
        let scraped = Registry::new();
        for family in consumer_families(&consumers.stats) {
            scraped
                .register(family)
                .expect("each metric registered once");
        }
        register(
            &scraped,
            counter(
                "consumer_pauses_total",
                "Times the consumers paused because the database was unavailable",
                consumers.gate.pauses(),
            ),
        );
        let relay = self.relay.lock().expect("never poisoned").clone();
        if let Some((relay, outbox)) = relay {
            if let Ok(Ok(counters)) =
                tokio::time::timeout(SCRAPE_TIMEOUT, relay.send(GetRelayCounters)).await
            {
                for (name, help, value) in [
                    (
                        "outbox_published_total",
                        "Events published by the relay",
                        counters.published,
                    ),
                    ("relay_rounds_total", "Relay rounds run", counters.rounds),
                    (
                        "relay_failed_rounds_total",
                        "Relay rounds that could not publish",
                        counters.failed_rounds,
                    ),
                    (
                        "outbox_pruned_total",
                        "Published outbox rows deleted",
                        counters.pruned,
                    ),
                ] {
                    register(&scraped, counter(name, help, value));
                }
            }
            if let Ok(Ok((backlog, oldest))) =
                tokio::time::timeout(SCRAPE_TIMEOUT, outbox.pending_summary()).await
            {
                register(
                    &scraped,
                    int_gauge("outbox_backlog", "Events not published yet", backlog as i64),
                );
                let age = Gauge::new(
                    "outbox_oldest_unpublished_seconds",
                    "Age of the oldest event not published yet (0 when none)",
                )
                .expect("a valid metric");
                age.set(oldest);
                register(&scraped, age);
            }
        }
        let watched = self.counters.lock().expect("never poisoned").clone();
        for read in watched {
            if let Ok(Some(family)) = tokio::time::timeout(SCRAPE_TIMEOUT, read()).await {
                register(&scraped, family);
            }
        }
        let mut families: Vec<MetricFamily> = self.kept.registry.gather();
        families.extend(scraped.gather());
        TextEncoder::new()
            .encode_to_string(&families)
            .expect("metrics encode as text")
    }
}

/// The methods counted under their own name; any other token (HTTP allows
/// clients to invent them) is counted as `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// The status as its three digits: `100`–`599` (actix-web answers nothing
/// else), one string each, made once.
fn status_label(status: u16) -> &'static str {
    static LABELS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let labels = LABELS.get_or_init(|| (100..600).map(|code| code.to_string()).collect());
    match status {
        100..=599 => &labels[usize::from(status - 100)],
        _ => "other",
    }
}

/// The consumers' figures, each series labelled with its queue.
fn consumer_families(stats: &ConsumerStatsByQueue) -> [Box<dyn Collector>; 5] {
    let family = |name: &str, help: &str, labels: &[&str]| {
        IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
    };
    let settled = family(
        "consumer_deliveries_total",
        "Deliveries settled by the consumer of each queue, by how",
        &["queue", "settlement"],
    );
    let settle_failures = family(
        "consumer_settle_failures_total",
        "Deliveries whose settlement the broker did not take (redelivered)",
        &["queue"],
    );
    let redeliveries = family(
        "consumer_redeliveries_total",
        "Deliveries the broker had delivered before: after a lost connection, a requeue or a queue leader change",
        &["queue"],
    );
    let batches = family(
        "consumer_batches_total",
        "Batches of deliveries handed to the domain actor",
        &["queue"],
    );
    let in_flight = IntGaugeVec::new(
        Opts::new(
            "consumer_deliveries_in_flight",
            "Deliveries received and not settled yet",
        ),
        &["queue"],
    )
    .expect("a valid metric");
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    for (queue, stats) in stats.by_queue() {
        for (settlement, value) in [
            ("acked", load(&stats.acked)),
            ("requeued", load(&stats.retried)),
            ("parked", load(&stats.parked)),
            ("dead_lettered", load(&stats.dead_lettered)),
        ] {
            settled
                .with_label_values(&[queue.as_str(), settlement])
                .inc_by(value);
        }
        let queue = [queue.as_str()];
        settle_failures
            .with_label_values(&queue)
            .inc_by(load(&stats.settle_failures));
        batches
            .with_label_values(&queue)
            .inc_by(load(&stats.batches));
        redeliveries
            .with_label_values(&queue)
            .inc_by(load(&stats.redelivered));
        in_flight
            .with_label_values(&queue)
            .set(load(&stats.in_flight) as i64);
    }
    [
        Box::new(settled),
        Box::new(settle_failures),
        Box::new(redeliveries),
        Box::new(batches),
        Box::new(in_flight),
    ]
}

fn counter(name: &str, help: &str, value: u64) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("a valid metric");
    counter.inc_by(value);
    counter
}

fn int_gauge(name: &str, help: &str, value: i64) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("a valid metric");
    gauge.set(value);
    gauge
}

fn register(registry: &Registry, collector: impl Collector + 'static) {
    registry
        .register(Box::new(collector))
        .expect("each metric registered once");
}

/// The service's metrics, in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")),
)]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    consumers: web::Data<ConsumerContext>,
) -> HttpResponse {
    let text = metrics.render(&consumers).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foundation::health::ServiceHealth;
    use foundation::outage::{Gate, Probe};
    use foundation::readiness::Readiness;
    use foundation::telemetry::test_logger;
    use messaging::consumer::ConsumerStatsByQueue;
    use std::sync::atomic::Ordering;

    fn consumers() -> ConsumerContext {
        let database: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
        ConsumerContext {
            gate: Gate::without_dependency(test_logger()),
            health: ServiceHealth::new(),
            stats: ConsumerStatsByQueue::default(),
            readiness: Readiness::new(database, test_logger()),
            max_batch: 1,
            max_message_bytes: contracts::events::MAX_EVENT_BYTES,
            log: test_logger(),
        }
    }

    #[actix::test]
    async fn invented_methods_and_odd_statuses_add_no_series() {
        // Arrange
        let (consumers, metrics) = (consumers(), Metrics::default());
        metrics.observe_request("GET", "/things", 200, 0.001);
        metrics.observe_request("M00000", "unmatched", 404, 0.001);
        let before = metrics.render(&consumers).await;

        // Act: thousands of method tokens no one defined.
        for n in 1..=5000 {
            metrics.observe_request(&format!("M{n:05}"), "unmatched", 404, 0.001);
        }
        metrics.observe_request("GET", "/things", 999, 0.001);
        let after = metrics.render(&consumers).await;

        // Assert: the same series, one more for the status outside 100-599.
        let series = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .map(|line| line.rsplit_once(' ').unwrap().0.to_string())
                .collect()
        };
        let (before, after) = (series(&before), series(&after));
        let added: Vec<_> = after.iter().filter(|s| !before.contains(s)).collect();
        assert!(
            added.iter().all(|s| s.contains(r#"status="other""#)),
            "{added:?}"
        );
        assert_eq!(added.len(), 1, "{added:?}");
        assert!(
            after
                .iter()
                .any(|s| s.contains(r#"method="other",route="unmatched",status="404""#)),
            "{after:?}"
        );
    }

    #[actix::test]
    async fn watched_counters_are_reported_with_each_of_their_labels() {
        // Arrange: a family with two labels, and one whose source cannot answer.
        let (consumers, metrics) = (consumers(), Metrics::default());
        metrics.watch_counters(
            "emails_total",
            "Emails",
            ["kind", "result"],
            Arc::new(|| {
                Box::pin(async {
                    Some(vec![(["welcome", "sent"], 3), (["welcome", "skipped"], 1)])
                })
            }),
        );
        metrics.watch_counters(
            "unreadable_total",
            "A source that failed",
            ["outcome"],
            Arc::new(|| Box::pin(async { None })),
        );

        // Act
        let text = metrics.render(&consumers).await;

        // Assert: every series under its labels; nothing for the failed source.
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&r#"emails_total{kind="welcome",result="sent"} 3"#),
            "{text}"
        );
        assert!(
            lines.contains(&r#"emails_total{kind="welcome",result="skipped"} 1"#),
            "{text}"
        );
        assert!(!text.contains("unreadable_total"), "{text}");
    }

    #[actix::test]
    async fn each_consumed_queue_is_reported_under_its_name() {
        // Arrange: two queues, each with its own figures.
        let (consumers, metrics) = (consumers(), Metrics::default());
        let memory = consumers.stats.register("memory");
        let other = consumers.stats.register("other.queue");
        memory.acked.fetch_add(2, Ordering::Relaxed);
        other.dead_lettered.fetch_add(1, Ordering::Relaxed);
        other.batches.fetch_add(1, Ordering::Relaxed);

        // Act
        let text = metrics.render(&consumers).await;

        // Assert: each figure on the queue it happened to.
        for series in [
            r#"consumer_deliveries_total{queue="memory",settlement="acked"} 2"#,
            r#"consumer_deliveries_total{queue="memory",settlement="dead_lettered"} 0"#,
            r#"consumer_deliveries_total{queue="other.queue",settlement="acked"} 0"#,
            r#"consumer_deliveries_total{queue="other.queue",settlement="dead_lettered"} 1"#,
            r#"consumer_deliveries_in_flight{queue="other.queue"} 0"#,
            r#"consumer_batches_total{queue="other.queue"} 1"#,
            r#"consumer_settle_failures_total{queue="memory"} 0"#,
            "consumer_pauses_total 0",
        ] {
            assert!(
                text.lines().any(|line| line == series),
                "{series} in\n{text}"
            );
        }
    }
}
