//! RabbitMQ through lapin: the system's topology, a publisher with confirms
//! and subscriptions that outlive broker restarts. Nothing outside this
//! module sees a lapin type: the rest of the code uses the traits of
//! [`crate::broker`].

mod delivery;
mod publisher;
mod subscriber;
mod topology;

pub use publisher::AmqpPublisher;
pub use subscriber::subscribe;
pub use topology::{
    Feed, ORDER_CREATED, ORDER_EXCHANGE, QueueNames, STOCK_EVENTS, STOCK_EXCHANGE, SUBSCRIPTIONS,
    Topology,
};

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use slog::{Logger, info};

use crate::broker::BrokerError;
use crate::config::redact_url;
use crate::retry::until_ok;

/// How long opening a connection may take before it counts as failed: an
/// unreachable broker must not stall a publishing round for a TCP timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// lapin's own auto-recovery is left off: after `rabbitmqctl stop_app` /
/// `start_app` it reconnected but its consumers received nothing more (lapin
/// 4.12, RabbitMQ 3.10). Our reconnect loops start from a fresh connection
/// and re-declare the topology instead, which the fault suite exercises.
fn properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(name.into())
}

/// How long each step of setting up after connecting may take (declaring
/// the topology, opening a channel, prefetch, confirms, consuming,
/// cancelling): a broker that accepted the connection and then stopped
/// answering must lead to a new connection, not to a wait without end.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one setup step under [`SETUP_TIMEOUT`]; `what` names it in the error.
async fn step<T, E: std::fmt::Display>(
    what: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(SETUP_TIMEOUT, work).await {
        Ok(done) => done.map_err(unavailable),
        Err(_) => Err(unavailable(format!(
            "{what}: no answer from the broker within {} s",
            SETUP_TIMEOUT.as_secs()
        ))),
    }
}

/// Opens a connection, or fails after [`CONNECT_TIMEOUT`].
async fn open(url: &str, name: &str) -> Result<Connection, BrokerError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties(name))).await {
        Ok(connected) => connected.map_err(unavailable),
        Err(_) => Err(unavailable(format!(
            "no connection within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Connects, retrying with backoff until the broker answers.
async fn connect(url: &str, name: &str, log: &Logger) -> Connection {
    let log = log.new(slog::o!("amqp_url" => redact_url(url)));
    let connection = until_ok(&log, "connecting to RabbitMQ", || open(url, name)).await;
    info!(log, "connected to RabbitMQ");
    connection
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}
