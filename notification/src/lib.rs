//! The notification service: sends each customer one email of each kind
//! per order, from the events of the order and product services.

/// The service's name: its queues, its accounts.
pub const SERVICE: &str = "notification";

pub mod actors;
pub mod config;
pub mod domain;
pub mod entity;
pub mod routes;
pub mod startup;
pub mod store;
