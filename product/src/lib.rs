//! The product service: keeps the catalogue and its stock, reserving stock
//! for each `OrderCreated` exactly once.

/// The service's name: its queues, its outbox rows, its accounts.
pub const SERVICE: &str = "product";

pub mod actors;
pub mod config;
pub mod domain;
pub mod entity;
pub mod routes;
pub mod startup;
pub mod store;
