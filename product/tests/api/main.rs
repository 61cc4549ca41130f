mod broker_setup;
mod catalogue;
mod consuming;
mod helpers;
mod metrics;
mod products;
mod readiness;
mod settle_failure;
