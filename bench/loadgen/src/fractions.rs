//! Our figures as a fraction of the raw limits measured in the same run.

use serde::Serialize;

/// The figures of the system under test that have a raw counterpart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ours {
    pub intake_closed_per_s: Option<f64>,
    /// Accepted per second in the open loop, with the offered rate.
    pub intake_open: Option<(f64, f64)>,
    pub end_to_end_per_s: Option<f64>,
}

/// The raw limits of PostgreSQL and RabbitMQ.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub pg_single_commits_per_s: Option<f64>,
    pub pg_single_concurrency: u32,
    pub pg_batched_rows_per_s: Option<f64>,
    pub pg_batch_rows: u32,
    pub amqp_publish_per_s: Option<f64>,
    pub amqp_consume_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fraction {
    pub ours: String,
    pub ours_value: f64,
    pub limit: String,
    pub limit_value: f64,
    /// ours / limit
    pub fraction: f64,
}

/// A raw limit's label and value, when it was measured.
type Limit = Option<(String, f64)>;

/// Every pair of our figure and a raw limit both measured; the others are
/// left out.
pub fn fractions(ours: &Ours, limits: &Limits) -> Vec<Fraction> {
    let pg_single = limits.pg_single_commits_per_s.map(|v| {
        (
            format!(
                "PostgreSQL 1-row commits/s ({} conns)",
                limits.pg_single_concurrency
            ),
            v,
        )
    });
    let pg_batched = limits.pg_batched_rows_per_s.map(|v| {
        (
            format!("PostgreSQL rows/s in {}-row commits", limits.pg_batch_rows),
            v,
        )
    });
    let publish = limits
        .amqp_publish_per_s
        .map(|v| ("RabbitMQ confirmed publishes/s".to_string(), v));
    let consume = limits
        .amqp_consume_per_s
        .map(|v| ("RabbitMQ consumed+acked/s".to_string(), v));

    let mut pairs: Vec<(String, f64, &Limit)> = Vec::new();
    if let Some(v) = ours.intake_closed_per_s {
        let label = "intake closed loop, accepted/s".to_string();
        pairs.push((label.clone(), v, &pg_single));
        pairs.push((label, v, &pg_batched));
    }
    if let Some((v, offered)) = ours.intake_open {
        let label = format!("intake open loop at {offered:.0}/s, accepted/s");
        pairs.push((label, v, &pg_single));
    }
    if let Some(v) = ours.end_to_end_per_s {
        let label = "end to end, final/s".to_string();
        for limit in [&pg_single, &pg_batched, &publish, &consume] {
            pairs.push((label.clone(), v, limit));
        }
    }
    pairs
        .into_iter()
        .filter_map(|(ours, ours_value, limit)| {
            let (limit, limit_value) = limit.clone()?;
            (limit_value > 0.0).then(|| Fraction {
                ours,
                ours_value,
                limit,
                limit_value,
                fraction: ours_value / limit_value,
            })
        })
        .collect()
}

/// The table as printed at the end of `loadgen all`.
pub fn render(rows: &[Fraction]) -> String {
    if rows.is_empty() {
        return "no figure has a raw limit to compare with\n".to_string();
    }
    let ours_width = rows
        .iter()
        .map(|r| r.ours.chars().count())
        .max()
        .unwrap_or(0);
    let limit_width = rows
        .iter()
        .map(|r| r.limit.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{:<ours_width$}  {:>9}  {:<limit_width$}  {:>9}  {:>8}\n",
        "our figure", "value", "raw limit", "value", "fraction"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<ours_width$}  {:>9.0}  {:<limit_width$}  {:>9.0}  {:>7.1}%\n",
            row.ours,
            row.ours_value,
            row.limit,
            row.limit_value,
            row.fraction * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            pg_single_commits_per_s: Some(4000.0),
            pg_single_concurrency: 64,
            pg_batched_rows_per_s: Some(100_000.0),
            pg_batch_rows: 100,
            amqp_publish_per_s: Some(10_000.0),
            amqp_consume_per_s: Some(20_000.0),
        }
    }

    #[test]
    fn every_figure_is_divided_by_each_of_its_limits() {
        let ours = Ours {
            intake_closed_per_s: Some(1000.0),
            intake_open: Some((750.0, 750.0)),
            end_to_end_per_s: Some(500.0),
        };
        let rows = fractions(&ours, &limits());

        let got: Vec<(&str, &str, f64)> = rows
            .iter()
            .map(|r| (r.ours.as_str(), r.limit.as_str(), r.fraction))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "intake closed loop, accepted/s",
                    "PostgreSQL 1-row commits/s (64 conns)",
                    0.25
                ),
                (
                    "intake closed loop, accepted/s",
                    "PostgreSQL rows/s in 100-row commits",
                    0.01
                ),
                (
                    "intake open loop at 750/s, accepted/s",
                    "PostgreSQL 1-row commits/s (64 conns)",
                    0.1875
                ),
                (
                    "end to end, final/s",
                    "PostgreSQL 1-row commits/s (64 conns)",
                    0.125
                ),
                (
                    "end to end, final/s",
                    "PostgreSQL rows/s in 100-row commits",
                    0.005
                ),
                (
                    "end to end, final/s",
                    "RabbitMQ confirmed publishes/s",
                    0.05
                ),
                ("end to end, final/s", "RabbitMQ consumed+acked/s", 0.025),
            ]
        );
    }

    #[test]
    fn a_missing_figure_or_limit_leaves_its_rows_out() {
        let ours = Ours {
            end_to_end_per_s: Some(500.0),
            ..Ours::default()
        };
        let only_broker = Limits {
            amqp_publish_per_s: Some(10_000.0),
            amqp_consume_per_s: Some(0.0),
            ..Limits::default()
        };
        let rows = fractions(&ours, &only_broker);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].limit, "RabbitMQ confirmed publishes/s");
        assert!(fractions(&Ours::default(), &limits()).is_empty());
    }

    #[test]
    fn the_table_aligns_columns_and_shows_percentages() {
        let ours = Ours {
            intake_closed_per_s: Some(1020.0),
            ..Ours::default()
        };
        let table = render(&fractions(&ours, &limits()));
        let lines: Vec<&str> = table.lines().collect();

        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("our figure"));
        assert!(lines[1].ends_with("25.5%"), "{table}");
        assert!(lines[2].ends_with("1.0%"), "{table}");
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
        assert_eq!(render(&[]), "no figure has a raw limit to compare with\n");
    }
}
