//! What every part of a service stands on: typed settings, logging and
//! trace ids, retries with backoff, the outage gate and whose fault a
//! failure is, liveness and readiness, and the database connection with
//! its probes.
//!
//! Depends on `contracts` only among our crates; knows nothing of the
//! broker (`messaging`) or of how a service is assembled (`platform`).

pub mod coalesce;
pub mod config;
pub mod db;
pub mod failure;
pub mod health;
pub mod outage;
pub mod readiness;
pub mod retry;
pub mod telemetry;
/// What the TLS errors of both clients mean.
pub use migration::tls;
