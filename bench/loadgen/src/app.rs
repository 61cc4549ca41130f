//! Runs a command: the phases in order, then the table, the JSON and the charts.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use sea_orm::DatabaseConnection;
use tokio::runtime::Runtime;

use crate::cli::{
    AllArgs, Cli, Command, EndToEndArgs, IntakeArgs, OrderArgs, Output, RawArgs, Targets,
};
use crate::end_to_end::{self, EndToEndConfig};
use crate::flood::Flood;
use crate::intake::{self, IntakeConfig, Mode};
use crate::management::Management;
use crate::orders::{self, OrderSpec};
use crate::output::{Charts, write_outputs};
use crate::progress::{request_stop, stop_requested};
use crate::raw::{self, RawConfig};
use crate::report::{self, Report};
use crate::schedule::Schedule;
use crate::stats::LatencySummary;
use crate::{db, fractions, settle};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("loadgen: interrupted; ending the phase (scratch databases and vhosts are still removed)");
            request_stop();
        }
    });

    let mut report = Report::start(std::env::args_os().map(|a| a.to_string_lossy().into_owned()));
    let mut charts = Charts::default();
    let outcome = match &cli.command {
        Command::Intake(args) => {
            run_intake(&cli.targets, args, &cli.output, &mut report, &mut charts)
        }
        Command::EndToEnd(args) => run_end_to_end(
            &rt,
            &cli.targets,
            args,
            &cli.output,
            &mut report,
            &mut charts,
        ),
        Command::Raw(args) => run_raw(&rt, &cli.targets, args, &cli.output, &mut report),
        Command::All(args) => run_all(
            &rt,
            &cli.targets,
            args,
            &cli.output,
            &mut report,
            &mut charts,
        ),
    };
    report.finish(stop_requested());
    if matches!(cli.command, Command::All(_)) && outcome.is_ok() {
        println!("\n{}", fractions::render(&report.fractions));
    }
    if report.has_figures() {
        write_outputs(&cli.output, &report, &charts)?;
    }
    outcome?;
    if stop_requested() {
        bail!("interrupted: the figures cover part of the run");
    }
    Ok(())
}

fn spec(order: &OrderArgs, products: u32) -> OrderSpec {
    OrderSpec::new(
        &order.product_id,
        products,
        order.customer_email.as_deref(),
        order.idempotency_keys,
    )
}

fn run_intake(
    targets: &Targets,
    args: &IntakeArgs,
    output: &Output,
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    let mode = match args.rate {
        Some(rate) => Mode::Open {
            schedule: Schedule::new(rate, args.connections, Duration::from_secs(args.seconds))?,
        },
        None => Mode::Closed {
            clients: args.clients,
        },
    };
    orders::check_reachable(&targets.order_url)?;
    let config = IntakeConfig {
        mode,
        seconds: args.seconds,
        drain: Duration::from_secs(args.drain_seconds),
        spec: spec(&args.order, 1),
    };
    let flood = (!args.flood.is_empty()).then(|| Flood::start(&args.flood, args.flood_clients));
    let measured = intake_phase(&targets.order_url, &config, output.quiet, report, charts);
    if let Some(flood) = flood {
        println!("{}", flood.stop());
    }
    measured
}

fn intake_phase(
    order_url: &str,
    config: &IntakeConfig,
    quiet: bool,
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    let run = intake::run(order_url, config, quiet)?;
    println!("{}", report::intake_summary(&run.report));
    if run.report.accepted == 0 {
        eprintln!(
            "warning: not one order was accepted ({}); is product {:?} in the database?",
            run.report.failures,
            config.spec.products()[0]
        );
    }
    let (label, open) = match run.report.target_rate {
        Some(rate) => (
            format!("intake open loop at {rate:.0}/s (from due time)"),
            true,
        ),
        None => ("intake closed loop (from send)".to_string(), false),
    };
    charts.latency.push((label.clone(), run.histogram));
    charts.throughput.push((
        label
            .replace(" (from due time)", "")
            .replace(" (from send)", "")
            + ", accepted",
        run.report.timeline.clone(),
    ));
    if open {
        report.intake_open = Some(run.report);
    } else {
        report.intake_closed = Some(run.report);
    }
    Ok(())
}

fn run_end_to_end(
    rt: &Runtime,
    targets: &Targets,
    args: &EndToEndArgs,
    output: &Output,
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    orders::check_reachable(&targets.order_url)?;
    let database = connect(rt, targets, report)?;
    let config = EndToEndConfig {
        orders: args.orders,
        clients: args.clients,
        timeout: Duration::from_secs(args.timeout_seconds),
        spec: spec(&args.order, args.products),
    };
    end_to_end_phase(
        rt,
        targets,
        &database,
        &config,
        output.quiet,
        report,
        charts,
    )
}

fn end_to_end_phase(
    rt: &Runtime,
    targets: &Targets,
    database: &DatabaseConnection,
    config: &EndToEndConfig,
    quiet: bool,
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    let run = end_to_end::run(rt, &targets.order_url, database, config, quiet)?;
    println!("{}", report::end_to_end_summary(&run.report));
    charts
        .latency
        .push(("end to end (accept → final)".to_string(), run.histogram));
    charts.throughput.push((
        "end-to-end burst, accepted".to_string(),
        run.report.accepted_timeline.clone(),
    ));
    charts.throughput.push((
        "end to end, final".to_string(),
        run.report.final_timeline.clone(),
    ));
    report.end_to_end = Some(run.report);
    Ok(())
}

fn raw_config(
    concurrency: u32,
    seconds: u64,
    batch_rows: u32,
    batch_concurrency: Option<u32>,
    window: u16,
    report: &Report,
) -> RawConfig {
    RawConfig {
        concurrency,
        batch_concurrency: batch_concurrency.unwrap_or(report.machine.cores.unwrap_or(2).max(1)),
        batch_rows,
        seconds,
        amqp_window: window,
    }
}

fn run_raw(
    rt: &Runtime,
    targets: &Targets,
    args: &RawArgs,
    output: &Output,
    report: &mut Report,
) -> anyhow::Result<()> {
    let config = raw_config(
        args.concurrency,
        args.seconds,
        args.batch_rows,
        args.batch_concurrency,
        args.amqp_window,
        report,
    );
    raw_phase(rt, targets, &config, output.quiet, report)
}

fn raw_phase(
    rt: &Runtime,
    targets: &Targets,
    config: &RawConfig,
    quiet: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let management = Management::new(&targets.management_url, &targets.amqp_url)?;
    let raw = raw::run(
        rt,
        &targets.database_url,
        &targets.amqp_url,
        &management,
        config,
        quiet,
    )?;
    println!("{}", report::raw_summary(&raw));
    report.machine.postgresql = Some(raw.postgres.version.clone());
    report.machine.rabbitmq = Some(raw.rabbitmq.version.clone());
    report.raw = Some(raw);
    Ok(())
}

fn connect(
    rt: &Runtime,
    targets: &Targets,
    report: &mut Report,
) -> anyhow::Result<DatabaseConnection> {
    let database = rt.block_on(db::connect(&targets.database_url, 4))?;
    report.machine.postgresql = rt.block_on(db::server_version(&database)).ok();
    Ok(database)
}

fn run_all(
    rt: &Runtime,
    targets: &Targets,
    args: &AllArgs,
    output: &Output,
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    // Everything reachable and in place before minutes of measuring.
    orders::check_reachable(&targets.order_url)?;
    let database = connect(rt, targets, report)?;
    let management = Management::new(&targets.management_url, &targets.amqp_url)?;
    report.machine.rabbitmq = Some(management.version()?);
    let hot = spec(&args.order, 1);
    let spread = spec(&args.order, args.products);
    rt.block_on(db::check_products(&database, hot.products()))?;
    rt.block_on(db::check_products(&database, spread.products()))?;
    let settle_for = Duration::from_secs(args.settle_seconds);
    let quiet = output.quiet;

    let config = raw_config(
        args.clients,
        args.raw_seconds,
        args.batch_rows,
        args.batch_concurrency,
        args.amqp_window,
        report,
    );
    report
        .settle
        .push(settle::settle(rt, &database, "start", settle_for, quiet)?);
    raw_phase(rt, targets, &config, quiet, report)?;
    if stop_requested() {
        return Ok(());
    }

    let closed = IntakeConfig {
        mode: Mode::Closed {
            clients: args.clients,
        },
        seconds: args.seconds,
        drain: Duration::from_secs(args.drain_seconds),
        spec: hot.clone(),
    };
    intake_phase(&targets.order_url, &closed, quiet, report, charts)?;
    report.settle.push(settle::settle(
        rt,
        &database,
        "intake closed",
        settle_for,
        quiet,
    )?);
    if stop_requested() {
        return Ok(());
    }

    let rate = match args.rate {
        Some(rate) => rate,
        None => {
            let accepted = report
                .intake_closed
                .as_ref()
                .map_or(0.0, |r| r.accepted_per_s);
            if accepted <= 0.0 {
                bail!(
                    "the closed loop accepted nothing, so there is no rate to offer the open loop: pass --rate"
                );
            }
            intake::default_rate(accepted)
        }
    };
    let open = IntakeConfig {
        mode: Mode::Open {
            schedule: Schedule::new(
                rate,
                args.connections.unwrap_or(args.clients),
                Duration::from_secs(args.seconds),
            )?,
        },
        seconds: args.seconds,
        drain: Duration::from_secs(args.drain_seconds),
        spec: hot,
    };
    let open_from = end_to_end::epoch_seconds(SystemTime::now());
    intake_phase(&targets.order_url, &open, quiet, report, charts)?;
    let open_to = end_to_end::epoch_seconds(SystemTime::now());
    report.settle.push(settle::settle(
        rt,
        &database,
        "intake open",
        settle_for,
        quiet,
    )?);
    open_accept_to_final(rt, &database, (open_from, open_to), report, charts)?;
    if stop_requested() {
        return Ok(());
    }

    let burst = EndToEndConfig {
        orders: args.orders,
        clients: args.clients,
        timeout: Duration::from_secs(args.timeout_seconds),
        spec: spread,
    };
    end_to_end_phase(rt, targets, &database, &burst, quiet, report, charts)
}

/// Accept → final of the open loop's orders (final by now: the settle
/// waited for them), from their own timestamps.
fn open_accept_to_final(
    rt: &Runtime,
    database: &DatabaseConnection,
    (from, to): (f64, f64),
    report: &mut Report,
    charts: &mut Charts,
) -> anyhow::Result<()> {
    let times = rt.block_on(db::order_times_created_between(database, from, to))?;
    let outcome = end_to_end::outcome(from, &times);
    let summary = LatencySummary::of(&outcome.histogram);
    println!("intake, open loop: accept → final  {summary}");
    charts.latency.push((
        "intake open loop, accept → final".to_string(),
        outcome.histogram,
    ));
    report.intake_open_accept_to_final = Some(summary);
    Ok(())
}
