pub mod actors;
pub mod config;
pub mod routes;
pub mod startup;
