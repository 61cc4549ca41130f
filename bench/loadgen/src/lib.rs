//! `loadgen`: measures the running services (intake, end to end) against the
//! raw limits of PostgreSQL and RabbitMQ on the same machine. See
//! bench/BENCHMARKS.md.

pub mod app;
pub mod cli;
pub mod db;
pub mod end_to_end;
pub mod flood;
pub mod fractions;
pub mod intake;
pub mod machine;
pub mod management;
pub mod orders;
pub mod output;
pub mod plot;
pub mod progress;
pub mod raw;
pub mod report;
pub mod schedule;
pub mod settle;
pub mod stats;
pub mod urls;
