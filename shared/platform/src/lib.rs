//! How a service is put together and served: its settings, the HTTP edge
//! (request ids, deadlines, body limits, staff access, rate limits, OpenAPI
//! documents), `/health`, `/ready` and `/metrics` on the admin listener,
//! the wait for a current schema, and the skeleton that starts the relay,
//! serves, and drains the consumers on shutdown.
//!
//! The top of the shared crates: stands on `messaging`, `foundation` and
//! `contracts`, and nothing below depends on it.

pub mod builder;
pub mod config;
pub mod http;
pub mod listeners;
pub mod metrics;
pub mod rate_limit;
pub mod schema;
pub mod service;
