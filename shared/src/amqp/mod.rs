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

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionProperties, DefaultConnectionBuilder};
use slog::{Logger, error, info};

use crate::broker::BrokerError;
use crate::config::{CaBundle, redact_url};
use crate::health::ServiceHealth;
use crate::retry::{backoff, until_ok};

/// Where the broker is: its URL and, for `amqps://`, the CA certificates
/// its certificate must chain to (without, Mozilla's public roots).
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    ca: Option<CaBundle>,
}

impl Endpoint {
    pub fn new(url: &str, ca: Option<CaBundle>) -> Self {
        Self {
            url: url.to_string(),
            ca,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn uses_tls(&self) -> bool {
        self.url.starts_with("amqps:")
    }

    fn tls(&self) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca.as_ref().map(|ca| ca.pem().to_string()),
        }
    }

    /// Why the broker's certificate was refused, in words that say what to
    /// check.
    fn untrusted(&self, refused: &rustls::Error) -> String {
        let trusted = match &self.ca {
            Some(ca) => format!("the CA in AMQP_CA_FILE ({})", ca.path().display()),
            None => "Mozilla's public roots (AMQP_CA_FILE is not set)".to_string(),
        };
        format!("RabbitMQ's certificate is not trusted ({refused}); trusted: {trusted}")
    }
}

/// A broker without TLS settings of its own (tests, tools): `amqps://`
/// URLs are checked against Mozilla's public roots.
impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Self::new(url, None)
    }
}

impl From<&String> for Endpoint {
    fn from(url: &String) -> Self {
        Self::new(url, None)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(endpoint: &Endpoint) -> Self {
        endpoint.clone()
    }
}

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

/// How an attempt to connect failed.
enum OpenError {
    /// The broker's certificate was refused: waiting will not fix it.
    Untrusted(String),
    Unavailable(BrokerError),
}

/// Opens a connection (TLS with `amqps://`), or fails after
/// [`CONNECT_TIMEOUT`].
async fn try_open(endpoint: &Endpoint, name: &str) -> Result<Connection, OpenError> {
    let connecting = async {
        DefaultConnectionBuilder::new()?
            .with_uri_str(endpoint.url.clone())
            .with_properties(properties(name))
            .with_tls_config(endpoint.tls())
            .connect()
            .await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(match crate::tls::untrusted_certificate(&e) {
            Some(refused) => OpenError::Untrusted(endpoint.untrusted(refused)),
            None => OpenError::Unavailable(unavailable(e)),
        }),
        Err(_) => Err(OpenError::Unavailable(unavailable(format!(
            "no connection within {} s",
            CONNECT_TIMEOUT.as_secs()
        )))),
    }
}

/// Opens a connection, or fails after [`CONNECT_TIMEOUT`]; a certificate
/// not trusted is reported as the broker being unavailable (services learn
/// of it through [`refuse_an_untrusted_broker`]).
async fn open(endpoint: &Endpoint, name: &str) -> Result<Connection, BrokerError> {
    try_open(endpoint, name).await.map_err(|e| match e {
        OpenError::Untrusted(reason) => unavailable(reason),
        OpenError::Unavailable(e) => e,
    })
}

/// Connects, retrying with backoff until the broker answers.
async fn connect(endpoint: &Endpoint, name: &str, log: &Logger) -> Connection {
    let log = log.new(slog::o!("amqp_url" => redact_url(&endpoint.url)));
    let connection = until_ok(&log, "connecting to RabbitMQ", || open(endpoint, name)).await;
    info!(log, "connected to RabbitMQ");
    connection
}

/// With `amqps://`, connects once the broker answers, to learn whether its
/// certificate is trusted: if not, `health` fails, and the service stops
/// and exits non-zero, naming the reason (a misconfiguration, which no
/// waiting fixes; the consumers and the publisher would otherwise retry
/// for ever). An outage is waited out, as by every connection; once one
/// connection succeeds, the check is over. Runs in the background: a
/// service does not wait for RabbitMQ to start.
pub fn refuse_an_untrusted_broker(
    endpoint: &Endpoint,
    service: &str,
    health: ServiceHealth,
    log: &Logger,
) {
    if !endpoint.uses_tls() {
        return;
    }
    let endpoint = endpoint.clone();
    let name = format!("{service}-certificate-check");
    let log = log.new(slog::o!("amqp_url" => redact_url(&endpoint.url)));
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            match try_open(&endpoint, &name).await {
                Ok(connection) => {
                    let _ = connection.close(200, "certificate checked".into()).await;
                    return;
                }
                Err(OpenError::Untrusted(reason)) => {
                    error!(log, "not connecting to RabbitMQ: its certificate is not trusted";
                        "dependency" => "rabbitmq", "err" => %reason);
                    health.fail(reason);
                    return;
                }
                Err(OpenError::Unavailable(_)) => {
                    // The consumers' and publisher's own attempts log it.
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt, Duration::from_secs(5))).await;
                }
            }
        }
    });
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}
