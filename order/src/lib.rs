pub mod actors;
pub mod config;
pub mod domain;
pub mod entity;
pub mod error;
pub mod routes;
pub mod startup;
pub mod store;
