//! The provisioned Grafana dashboard (deploy/observability) against what the
//! running services and RabbitMQ export: every metric a panel queries exists,
//! with every label the panel groups or filters by, so no panel stays empty
//! because of a renamed metric or label.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;
use system_tests::{QUEUES, SETTLE, System};
use testkit::{http, wait_until};

/// Labels Prometheus adds to every scraped series (or a histogram carries).
const ADDED_BY_PROMETHEUS: [&str; 3] = ["job", "instance", "le"];

/// RabbitMQ's Prometheus endpoint (plugin rabbitmq_prometheus, which
/// `.ci/run` enables); override with `TEST_RABBITMQ_PROMETHEUS`.
fn rabbitmq_prometheus() -> String {
    std::env::var("TEST_RABBITMQ_PROMETHEUS").unwrap_or_else(|_| "http://127.0.0.1:15692".into())
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_exposition(text: &str) -> Vec<Series> {
    let label = Regex::new(r#"(\w+)="((?:[^"\\]|\\.)*)""#).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = match (line.find('{'), line.rfind('}')) {
                (Some(open), Some(close)) => label
                    .captures_iter(&line[open + 1..close])
                    .map(|c| (c[1].to_string(), c[2].to_string()))
                    .collect(),
                _ => BTreeMap::new(),
            };
            Series {
                name: line[..name_end].to_string(),
                labels,
                value: line
                    .rsplit_once(' ')
                    .and_then(|(_, value)| value.parse().ok())
                    .unwrap_or(f64::NAN),
            }
        })
        .collect()
}

fn scrape(url: &str) -> Vec<Series> {
    let (status, body) = http("GET", url, None).unwrap();
    assert_eq!(status, 200, "GET {url}: {body}");
    parse_exposition(&body)
}

/// What one PromQL expression of a panel needs: the metrics it reads, the
/// labels it groups by, and its label matchers (label, operator, value).
#[derive(Debug, Default)]
struct Needs {
    metrics: BTreeSet<String>,
    grouped_by: BTreeSet<String>,
    matchers: Vec<(String, String, String)>,
}

fn needs_of(expr: &str) -> Needs {
    let mut needs = Needs::default();
    let by = Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").unwrap();
    for group in by.captures_iter(expr) {
        needs.grouped_by.extend(
            group[1]
                .split(',')
                .map(|label| label.trim().to_string())
                .filter(|label| !label.is_empty()),
        );
    }
    let rest = by.replace_all(expr, " ");
    let selector = Regex::new(r"\{([^}]*)\}").unwrap();
    let matcher = Regex::new(r#"(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#).unwrap();
    for block in selector.captures_iter(&rest) {
        for m in matcher.captures_iter(&block[1]) {
            needs.matchers.push((
                m[1].to_string(),
                m[2].to_string(),
                m[3].replace("\\\\", "\\"),
            ));
        }
    }
    let rest = selector.replace_all(&rest, " ");
    let rest = Regex::new(r"\[[^\]]*\]").unwrap().replace_all(&rest, " ");
    let functions = [
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "rate",
        "increase",
        "histogram_quantile",
    ];
    for word in Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*")
        .unwrap()
        .find_iter(&rest)
    {
        if !functions.contains(&word.as_str()) {
            needs.metrics.insert(word.as_str().to_string());
        }
    }
    needs
}

fn dashboard() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/observability/grafana/dashboards/ecommerce.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn every_dashboard_panel_reads_metrics_and_labels_that_the_system_exports() {
    // Arrange: a running system that has taken one order to its end, so that
    // every family has its series (deliveries, reservations, emails).
    let system = System::start();
    system.place_order(None);
    system.wait_for_stock("123", 9);
    wait_until(SETTLE, "the order's email in the metrics", || {
        let sent: f64 = scrape(&format!("{}/metrics", system.notification_admin_url))
            .iter()
            .filter(|s| {
                s.name == "emails_total" && s.labels.get("result").is_some_and(|r| r == "sent")
            })
            .map(|s| s.value)
            .sum();
        (sent >= 1.0).then_some(())
    });

    // Act: what the services and RabbitMQ export now.
    let mut exported = vec![];
    for url in [
        &system.order_admin_url,
        &system.product_admin_url,
        &system.notification_admin_url,
    ] {
        exported.extend(scrape(&format!("{url}/metrics")));
    }
    // RabbitMQ refreshes its queue figures every few seconds: wait for every
    // queue of the test vhost to show.
    let ours = system.vhost.name().to_string();
    exported.extend(wait_until(
        SETTLE,
        "the test vhost's queues in RabbitMQ's metrics",
        || {
            let queues: Vec<Series> = scrape(&format!(
                "{}/metrics/detailed?family=queue_coarse_metrics",
                rabbitmq_prometheus()
            ))
            .into_iter()
            .filter(|series| series.labels.get("vhost") == Some(&ours))
            .collect();
            let shown: BTreeSet<&str> = queues
                .iter()
                .filter_map(|series| series.labels.get("queue").map(String::as_str))
                .collect();
            QUEUES
                .iter()
                .all(|queue| shown.contains(queue))
                .then_some(queues)
        },
    ));

    // Assert: each panel's metrics, grouping labels and matched values exist.
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let mut checked = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(
            panel["datasource"]["uid"], "prometheus",
            "{title}: the provisioned datasource"
        );
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert_balanced(title, expr);
            let needs = needs_of(expr);
            if expr.contains("histogram_quantile") {
                assert!(
                    needs.grouped_by.contains("le"),
                    "{title}: `{expr}`: histogram_quantile needs the buckets (`by (le, ...)`)"
                );
            }
            assert!(
                !needs.metrics.is_empty(),
                "{title}: `{expr}` reads no metric"
            );
            for metric in &needs.metrics {
                let series: Vec<&Series> = exported.iter().filter(|s| &s.name == metric).collect();
                assert!(
                    !series.is_empty(),
                    "{title}: `{expr}`: nothing exports {metric}"
                );
                for label in needs
                    .grouped_by
                    .iter()
                    .chain(needs.matchers.iter().map(|m| &m.0))
                {
                    if ADDED_BY_PROMETHEUS.contains(&label.as_str()) {
                        continue;
                    }
                    assert!(
                        series.iter().any(|s| s.labels.contains_key(label)),
                        "{title}: `{expr}`: {metric} has no label {label}"
                    );
                }
                for (label, operator, pattern) in &needs.matchers {
                    let values: BTreeSet<&str> = series
                        .iter()
                        .filter_map(|s| s.labels.get(label).map(String::as_str))
                        .collect();
                    let whole = Regex::new(&format!("^(?:{pattern})$")).unwrap();
                    let found = match operator.as_str() {
                        "=" => values.contains(pattern.as_str()),
                        "=~" => {
                            // Each plain alternative must exist; a real regex
                            // must match at least one value.
                            if pattern
                                .chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '|')
                            {
                                pattern.split('|').all(|v| values.contains(v))
                            } else {
                                values.iter().any(|v| whole.is_match(v))
                            }
                        }
                        // What is left out must exist (a typo would leave
                        // out nothing), and something must remain.
                        _ => {
                            values.iter().any(|v| whole.is_match(v))
                                && values.iter().any(|v| !whole.is_match(v))
                        }
                    };
                    assert!(
                        found,
                        "{title}: `{expr}`: {metric}{{{label}{operator}\"{pattern}\"}}: no match among {values:?}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} queries checked");
}

/// Parentheses, braces and brackets of `expr` close in order.
fn assert_balanced(title: &str, expr: &str) {
    let mut open = vec![];
    let (mut in_string, mut escaped) = (false, false);
    for c in expr.chars() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '{' | '[' => open.push(c),
            ')' | '}' | ']' => {
                let opening = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                assert_eq!(open.pop(), Some(opening), "{title}: `{expr}` is unbalanced");
            }
            _ => {}
        }
    }
    assert!(
        open.is_empty() && !in_string,
        "{title}: `{expr}` is unbalanced"
    );
}

#[test]
fn the_query_parser_finds_metrics_groups_and_matchers() {
    let needs = needs_of(
        r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="order"}[5m])))"#,
    );
    assert_eq!(
        needs.metrics,
        BTreeSet::from(["http_request_duration_seconds_bucket".to_string()])
    );
    assert_eq!(
        needs.grouped_by,
        BTreeSet::from(["le".to_string(), "route".to_string()])
    );
    assert_eq!(
        needs.matchers,
        vec![("job".to_string(), "=".to_string(), "order".to_string())]
    );
    assert_balanced("ok", r#"sum(rate(x{a="(\"}"}[1m]))"#);
    let unbalanced = std::panic::catch_unwind(|| assert_balanced("bad", "sum(rate(x[1m])"));
    assert!(unbalanced.is_err());
}
