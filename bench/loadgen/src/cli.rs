//! The command line. Every figure's meaning is in bench/BENCHMARKS.md.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Measures the running order, product and notification services against the raw \
             limits of PostgreSQL and RabbitMQ on the same machine."
)]
pub struct Cli {
    #[command(flatten)]
    pub targets: Targets,
    #[command(flatten)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Base URL of the order service.
    #[arg(long, global = true, default_value = "http://127.0.0.1:5002")]
    pub order_url: String,
    /// The services' database (the defaults are compose's development
    /// account, `.env.example`). The raw figures create (and drop) a scratch
    /// database on the same server.
    #[arg(
        long,
        global = true,
        default_value = "postgres://ecommerce:ecommerce-dev@127.0.0.1:5432/ecommerce"
    )]
    pub database_url: String,
    /// RabbitMQ. The raw figures use a scratch vhost on it (created and
    /// deleted through the management API); the URL's own vhost is ignored.
    #[arg(
        long,
        global = true,
        default_value = "amqp://ecommerce:ecommerce-dev@127.0.0.1:5672"
    )]
    pub amqp_url: String,
    /// RabbitMQ management API, used with the user and password of --amqp-url.
    #[arg(long, global = true, default_value = "http://127.0.0.1:15672")]
    pub management_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Write every figure, with the machine and versions, as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Draw the charts (latency distribution, throughput over time) as SVG files into this folder.
    #[arg(long, global = true)]
    pub svg_dir: Option<PathBuf>,
    /// Prefix of the SVG file names (e.g. a timestamp and a dash).
    #[arg(long, global = true, default_value = "")]
    pub svg_prefix: String,
    /// No progress line every second.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// How fast the order service accepts orders (POST /create_order answered 201).
    Intake(IntakeArgs),
    /// A burst of orders, then the time until every accepted one is confirmed or rejected.
    EndToEnd(EndToEndArgs),
    /// The raw limits of PostgreSQL and RabbitMQ on this machine, through the same client libraries.
    Raw(RawArgs),
    /// raw, intake (closed then open loop) and end-to-end in one run: one table, JSON, SVGs.
    All(AllArgs),
}

#[derive(Debug, Clone, Args)]
pub struct OrderArgs {
    /// The hot product; with --products M (end-to-end), the prefix of <id>-1 .. <id>-M.
    #[arg(long, default_value = "bench")]
    pub product_id: String,
    /// Send a unique Idempotency-Key with every order.
    #[arg(long)]
    pub idempotency_keys: bool,
    /// customer_email of every order (none by default).
    #[arg(long)]
    pub customer_email: Option<String>,
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["closed", "rate"])))]
pub struct IntakeArgs {
    /// Closed loop: each client sends its next order when the previous one is answered.
    #[arg(long)]
    pub closed: bool,
    /// Open loop: orders per second, sent on schedule whatever the answers; latency counts from
    /// when each order was due, so a stall shows.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Closed loop: concurrent clients, one keep-alive connection each.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Open loop: keep-alive connections sharing the rate.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: u32,
    /// How long to send orders.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seconds: u64,
    /// Open loop: how long past the end orders still due may go out before the rest count as unsent.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub drain_seconds: u64,
    /// While intake is measured, clients send `GET URL` back to back (the
    /// admin listener's /ready and /metrics, say); repeatable.
    #[arg(long = "flood", value_name = "URL")]
    pub flood: Vec<String>,
    /// How many clients flood the `--flood` URLs, each on its own connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub flood_clients: u32,
    #[command(flatten)]
    pub order: OrderArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EndToEndArgs {
    /// Orders in the burst.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: u64,
    /// 1: every order for the hot product; M: round-robin over <product-id>-1 .. <product-id>-M.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// Concurrent clients sending the burst.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Give up waiting for final statuses this long after the first order was sent.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub order: OrderArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    /// Concurrent one-row INSERT transactions (use the intake's client count).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Duration of each of the four measurements.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub seconds: u64,
    /// Rows per batched transaction.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub batch_rows: u32,
    /// Concurrent batched transactions [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_concurrency: Option<u32>,
    /// Publishes awaiting their confirm; also the consumer's prefetch.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub amqp_window: u16,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    /// Closed-loop clients, end-to-end clients, and the concurrency of the raw one-row commits.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub clients: u32,
    /// Duration of each intake run (closed, then open loop).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seconds: u64,
    /// Open-loop rate in orders per second [default: 75 % of what the closed loop accepted].
    /// Pass the same figure to compare runs.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Open-loop connections [default: --clients].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: Option<u32>,
    /// Open loop: how long past the end orders still due may go out before the rest count as unsent.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub drain_seconds: u64,
    /// Orders in the end-to-end burst.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: u64,
    /// End to end: 1 hot product, or M products <product-id>-1 .. <product-id>-M.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// End to end: give up waiting for final statuses after this long.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_seconds: u64,
    /// After each intake run, wait at most this long for the services to finish its orders.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub settle_seconds: u64,
    /// Duration of each of the four raw measurements.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub raw_seconds: u64,
    /// Rows per batched raw transaction.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub batch_rows: u32,
    /// Concurrent batched raw transactions [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_concurrency: Option<u32>,
    /// Raw RabbitMQ: publishes awaiting their confirm; also the consumer's prefetch.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub amqp_window: u16,
    #[command(flatten)]
    pub order: OrderArgs,
}

/// A positive, finite number of orders per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1e7 => Ok(rate),
        Ok(_) => Err(format!(
            "{text} is not a rate: give orders per second, above 0"
        )),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intake_needs_a_mode() {
        assert!(Cli::try_parse_from(["loadgen", "intake"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "intake", "--closed", "--rate", "5"]).is_err());
        let cli =
            Cli::try_parse_from(["loadgen", "intake", "--rate", "1500", "--seconds", "3"]).unwrap();
        assert!(
            matches!(cli.command, Command::Intake(IntakeArgs { rate: Some(r), seconds: 3, .. }) if r == 1500.0)
        );
    }

    #[test]
    fn bad_numbers_are_refused_not_panicked_on() {
        for args in [
            vec!["loadgen", "intake", "--rate", "0"],
            vec!["loadgen", "intake", "--rate", "fast"],
            vec!["loadgen", "intake", "--closed", "--clients", "0"],
            vec!["loadgen", "end-to-end", "--orders", "-5"],
            vec!["loadgen", "raw", "--amqp-window", "0"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn targets_are_global_and_default_to_the_local_services() {
        let cli =
            Cli::try_parse_from(["loadgen", "all", "--order-url", "http://127.0.0.1:9"]).unwrap();
        assert_eq!(cli.targets.order_url, "http://127.0.0.1:9");
        assert_eq!(cli.targets.management_url, "http://127.0.0.1:15672");
        assert!(cli.output.json.is_none());
    }
}
