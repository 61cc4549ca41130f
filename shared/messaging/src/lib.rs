//! Events in and out: the broker traits and their RabbitMQ implementation
//! (topology declaration, publisher with confirms, subscriptions, access
//! checks, the management API), the generic consumer actor that batches
//! deliveries into a domain actor and settles them, and the transactional
//! outbox with its relay. With the `test-support` feature, an in-memory
//! broker for tests of actors without RabbitMQ.
//!
//! Stands on `foundation` and `contracts`; knows nothing of HTTP or of how
//! a service is assembled (`platform`).

pub mod amqp;
pub mod broker;
pub mod config;
pub mod consumer;
pub mod outbox;
