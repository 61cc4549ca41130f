//! Pieces every service shares: event types, configuration helpers, the broker
//! abstraction and its RabbitMQ implementation, the generic consumer actor,
//! database helpers and logging.

pub mod amqp;
pub mod broker;
pub mod coalesce;
pub mod config;
pub mod consumer;
pub mod db;
pub mod events;
pub mod health;
pub mod http;
pub mod json;
pub mod metrics;
pub mod outage;
pub mod outbox;
pub mod rate_limit;
pub mod readiness;
pub mod retry;
pub mod schema;
pub mod service;
pub mod telemetry;
/// What the TLS errors of both clients mean.
pub use migration::tls;
