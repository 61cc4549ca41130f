//! The order service: accepts orders over HTTP, stores each with its
//! `OrderCreated` in one transaction, and follows each to its final status.

/// The service's name: its queues, its outbox rows, its accounts.
pub const SERVICE: &str = "order";

pub mod actors;
pub mod config;
pub mod domain;
pub mod entity;
pub mod routes;
pub mod startup;
pub mod store;
