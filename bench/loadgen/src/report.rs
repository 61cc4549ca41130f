//! Everything a run measured: printed as it goes, and written as one JSON
//! document.

use serde::Serialize;

use crate::end_to_end::EndToEndReport;
use crate::fractions::{Fraction, Limits, Ours};
use crate::intake::IntakeReport;
use crate::machine::Machine;
use crate::raw::{RawReport, Throughput};
use crate::settle::SettleReport;
use crate::stats::{LatencySummary, format_ms};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line, passwords hidden.
    pub command: Vec<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    pub raw: Option<RawReport>,
    pub intake_closed: Option<IntakeReport>,
    pub intake_open: Option<IntakeReport>,
    /// `updated_at − created_at` of the open loop's orders, read once they
    /// are final: accept → final at a steady rate.
    pub intake_open_accept_to_final: Option<LatencySummary>,
    pub end_to_end: Option<EndToEndReport>,
    /// Waits for the services to finish their work between phases.
    pub settle: Vec<SettleReport>,
    /// Our figures as fractions of the raw limits.
    pub fractions: Vec<Fraction>,
    /// Stopped by Ctrl-C: the figures cover part of the run.
    pub interrupted: bool,
}

impl Report {
    pub fn start(args: impl IntoIterator<Item = String>) -> Self {
        Self {
            command: args
                .into_iter()
                .map(|a| {
                    if a.contains("://") {
                        crate::urls::redact(&a)
                    } else {
                        a
                    }
                })
                .collect(),
            started_at: now(),
            finished_at: None,
            machine: Machine::read(),
            raw: None,
            intake_closed: None,
            intake_open: None,
            intake_open_accept_to_final: None,
            end_to_end: None,
            settle: Vec::new(),
            fractions: Vec::new(),
            interrupted: false,
        }
    }

    pub fn finish(&mut self, interrupted: bool) {
        self.finished_at = Some(now());
        self.machine.load_average_end = crate::machine::load_average();
        self.interrupted = interrupted;
        self.fractions = crate::fractions::fractions(&self.ours(), &self.limits());
    }

    /// Whether any phase measured something.
    pub fn has_figures(&self) -> bool {
        self.raw.is_some()
            || self.intake_closed.is_some()
            || self.intake_open.is_some()
            || self.end_to_end.is_some()
    }

    pub fn ours(&self) -> Ours {
        Ours {
            intake_closed_per_s: self.intake_closed.as_ref().map(|r| r.accepted_per_s),
            intake_open: self
                .intake_open
                .as_ref()
                .map(|r| (r.accepted_per_s, r.target_rate.unwrap_or(0.0))),
            end_to_end_per_s: self
                .end_to_end
                .as_ref()
                .filter(|r| r.still_pending == 0)
                .map(|r| r.final_per_s),
        }
    }

    pub fn limits(&self) -> Limits {
        match &self.raw {
            None => Limits::default(),
            Some(raw) => Limits {
                pg_single_commits_per_s: Some(raw.postgres.single.per_s),
                pg_single_concurrency: raw.postgres.single.connections,
                pg_batched_rows_per_s: Some(raw.postgres.batched.rows_per_s),
                pg_batch_rows: raw.postgres.batched.rows_per_operation,
                amqp_publish_per_s: Some(raw.rabbitmq.publish.per_s),
                amqp_consume_per_s: Some(raw.rabbitmq.consume.per_s),
            },
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn intake_summary(r: &IntakeReport) -> String {
    let title = match r.target_rate {
        Some(rate) => format!(
            "intake, open loop: {rate:.0} orders/s offered on {} connections for {} s",
            r.clients, r.seconds
        ),
        None => format!(
            "intake, closed loop: {} clients for {} s",
            r.clients, r.seconds
        ),
    };
    let mut out = format!(
        "{title}\n  accepted      {} of {} sent in {:.1} s = {:.0}/s\n  latency       {}{}\n  not accepted  {}\n",
        r.accepted,
        r.sent,
        r.elapsed_s,
        r.accepted_per_s,
        r.latency,
        if r.target_rate.is_some() {
            " (from when each order was due)"
        } else {
            ""
        },
        r.failures,
    );
    if r.unsent > 0 {
        out.push_str(&format!(
            "  unsent        {} (still due when the drain time ran out)\n",
            r.unsent
        ));
    }
    out
}

pub fn end_to_end_summary(r: &EndToEndReport) -> String {
    let spread = if r.products == 1 {
        "one hot product".to_string()
    } else {
        format!("{} products", r.products)
    };
    let mut out = format!(
        "end to end: a burst of {} orders on {spread}, {} clients\n  \
         accepted        {} in {:.1} s = {:.0}/s; not accepted: {}\n  \
         final           {} confirmed, {} rejected, {} still pending\n  \
         time to final   {:.1} s = {:.0} orders/s\n  \
         accept → final  {}\n",
        r.orders,
        r.clients,
        r.accepted,
        r.burst_s,
        r.burst_accepted_per_s,
        r.failures,
        r.confirmed,
        r.rejected,
        r.still_pending,
        r.time_to_final_s,
        r.final_per_s,
        r.accept_to_final,
    );
    if r.accepted_without_id > 0 {
        out.push_str(&format!(
            "  warning         {} answers 201 had no order_id and were not followed\n",
            r.accepted_without_id
        ));
    }
    out
}

fn throughput_line(name: &str, t: &Throughput, unit: &str) -> String {
    let rows = if t.rows_per_operation > 1 {
        format!(" = {:.0} rows/s", t.rows_per_s)
    } else {
        String::new()
    };
    format!(
        "  {name:<26} {:>9.0} {unit}/s{rows}  (concurrency {}{}, p50 {}, p99 {}{})\n",
        t.per_s,
        t.concurrency,
        if t.connections < t.concurrency {
            let plural = if t.connections == 1 { "" } else { "s" };
            format!(" on {} connection{plural}", t.connections)
        } else {
            String::new()
        },
        format_ms(t.latency.p50_ms),
        format_ms(t.latency.p99_ms),
        if t.errors > 0 {
            format!(", {} errors", t.errors)
        } else {
            String::new()
        }
    )
}

pub fn raw_summary(r: &RawReport) -> String {
    format!(
        "raw limits: PostgreSQL {}, RabbitMQ {}\n{}{}{}{}",
        r.postgres.version,
        r.rabbitmq.version,
        throughput_line("PostgreSQL 1-row commits", &r.postgres.single, "commits"),
        throughput_line(
            &format!(
                "PostgreSQL {}-row commits",
                r.postgres.batched.rows_per_operation
            ),
            &r.postgres.batched,
            "commits"
        ),
        throughput_line(
            &format!("RabbitMQ publish ({} B)", r.rabbitmq.message_bytes),
            &r.rabbitmq.publish,
            "confirms"
        ),
        throughput_line("RabbitMQ consume + ack", &r.rabbitmq.consume, "acks"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Failures, LatencySummary};

    fn intake(target_rate: Option<f64>, unsent: u64) -> IntakeReport {
        let mut failures = Failures::default();
        failures.status(503);
        IntakeReport {
            mode: if target_rate.is_some() {
                "open"
            } else {
                "closed"
            },
            clients: 64,
            target_rate,
            seconds: 10,
            elapsed_s: 10.04,
            sent: 10_201,
            accepted: 10_200,
            accepted_per_s: 1_015.9,
            unsent,
            latency: LatencySummary {
                count: 10_200,
                mean_ms: 60.0,
                p50_ms: 45.0,
                p90_ms: 90.0,
                p99_ms: 175.0,
                p999_ms: 400.0,
                max_ms: 812.0,
            },
            percentiles: Vec::new(),
            failures,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn the_closed_loop_summary_reads_as_a_sentence_per_figure() {
        assert_eq!(
            intake_summary(&intake(None, 0)),
            "intake, closed loop: 64 clients for 10 s\n\
             \x20 accepted      10200 of 10201 sent in 10.0 s = 1016/s\n\
             \x20 latency       p50 45.0 ms  p90 90.0 ms  p99 175 ms  p99.9 400 ms  max 812 ms\n\
             \x20 not accepted  1 × 503\n"
        );
    }

    #[test]
    fn the_open_loop_summary_names_the_rate_and_what_was_never_sent() {
        let text = intake_summary(&intake(Some(750.0), 12));
        assert!(text.starts_with("intake, open loop: 750 orders/s offered on 64 connections"));
        assert!(text.contains("(from when each order was due)"));
        assert!(text.contains("unsent        12"));
    }

    #[test]
    fn passwords_stay_out_of_the_recorded_command() {
        let report = Report::start([
            "loadgen".into(),
            "--amqp-url".into(),
            "amqp://u:secret@h:5672".into(),
        ]);
        assert_eq!(report.command[2], "amqp://u:***@h:5672");
        assert!(report.fractions.is_empty());
    }
}
