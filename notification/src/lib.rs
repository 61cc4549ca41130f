pub mod actors;
pub mod config;
pub mod entity;
pub mod routes;
pub mod startup;
