//! RabbitMQ through lapin: the system's topology, a publisher with confirms
//! and subscriptions that outlive broker restarts. Nothing outside this
//! module sees a lapin type: the rest of the code uses the traits of
//! [`crate::broker`].

mod access;
mod delivery;
mod management;
mod publisher;
mod subscriber;
mod topology;

pub use management::{ManagementApi, QueueTotals};
pub use publisher::AmqpPublisher;
pub use subscriber::subscribe;
pub use topology::Topology;

use std::time::Duration;

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionProperties, DefaultConnectionBuilder};
use slog::{Logger, error, info};

use contracts::topology::Needs;

use crate::broker::BrokerError;
use foundation::config::{CaBundle, redact_url};
use foundation::health::ServiceHealth;
use foundation::retry::{backoff, until_ok};

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

    /// The user in the URL, for messages about what it may do.
    pub fn user(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .map(|url| url.username().to_string())
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "guest".into())
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
/// and start over instead, which the fault suite exercises.
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
        Ok(Err(e)) => Err(match foundation::tls::untrusted_certificate(&e) {
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

/// Checks, once the broker answers, what the service needs of it: that its
/// certificate is trusted (with `amqps://`), that the topology is there
/// (waiting, with one line a minute, until the setup step has declared it)
/// and that the user may publish to every exchange in `needs`. A refusal
/// fails `health`, so the service stops and exits non-zero, naming the
/// reason: a misconfiguration, which no waiting fixes (the consumers and
/// the publisher would otherwise retry for ever). Reading the queues is
/// checked by consuming them ([`subscribe`]). An outage is waited out, as
/// by every connection. Runs in the background: a service does not wait
/// for RabbitMQ to start.
pub fn check_access(endpoint: &Endpoint, needs: Needs, health: ServiceHealth, log: &Logger) {
    let endpoint = endpoint.clone();
    let name = format!("{}-access-check", needs.service);
    let log = log.new(slog::o!("amqp_url" => redact_url(&endpoint.url)));
    tokio::spawn(async move {
        let mut attempt = 0;
        let mut said: Option<(String, std::time::Instant)> = None;
        loop {
            let outcome = match try_open(&endpoint, &name).await {
                Ok(connection) => {
                    let checked = access::check(&connection, &endpoint, &needs).await;
                    let _ = connection.close(200, "access checked".into()).await;
                    checked
                }
                Err(OpenError::Untrusted(reason)) => {
                    error!(log, "not connecting to RabbitMQ: its certificate is not trusted";
                        "dependency" => "rabbitmq", "err" => %reason);
                    health.fail(reason);
                    return;
                }
                // The consumers' and publisher's own attempts log it.
                Err(OpenError::Unavailable(_)) => access::Checked::Unavailable,
            };
            match outcome {
                access::Checked::Granted => {
                    info!(log, "broker access checked"; "user" => endpoint.user());
                    return;
                }
                access::Checked::Refused(reason) => {
                    error!(log, "cannot publish: permission missing";
                        "dependency" => "rabbitmq", "err" => %reason);
                    health.fail(reason);
                    return;
                }
                access::Checked::NoTopology(missing) => {
                    let repeat = said.as_ref().is_none_or(|(before, at)| {
                        *before != missing || at.elapsed() >= Duration::from_secs(60)
                    });
                    if repeat {
                        info!(log, "waiting for the broker topology: the `topology` command declares it";
                            "missing" => &missing);
                        said = Some((missing, std::time::Instant::now()));
                    }
                    attempt = 0;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                access::Checked::Unavailable => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt, Duration::from_secs(5))).await;
                }
            }
        }
    });
}

/// Declares `topology` on the broker at `endpoint`, waiting for it to
/// answer (an outage is waited out; a certificate not trusted, or a
/// refusal, is an error): what the `topology` command does.
pub async fn declare_topology(
    endpoint: &Endpoint,
    topology: Topology,
    log: &Logger,
) -> anyhow::Result<()> {
    let log = log.new(slog::o!("amqp_url" => redact_url(&endpoint.url)));
    let mut attempt = 0;
    let connection = loop {
        match try_open(endpoint, "topology").await {
            Ok(connection) => break connection,
            Err(OpenError::Untrusted(reason)) => anyhow::bail!(reason),
            Err(OpenError::Unavailable(e)) => {
                attempt += 1;
                let wait = backoff(attempt, Duration::from_secs(5));
                info!(log, "waiting for RabbitMQ"; "err" => %e, "retry_in_ms" => wait.as_millis());
                tokio::time::sleep(wait).await;
            }
        }
    };
    let declared = tokio::time::timeout(SETUP_TIMEOUT * 3, topology.declare(&connection)).await;
    let _ = connection.close(200, "topology declared".into()).await;
    match declared {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_access_refused(&e) => Err(anyhow::anyhow!(
            "the broker refuses {} declaring the topology ({e}): run this with an account that may configure the vhost",
            endpoint.user()
        )),
        Ok(Err(e)) => Err(anyhow::anyhow!("declaring the topology: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "declaring the topology: no answer from the broker within {} s",
            (SETUP_TIMEOUT * 3).as_secs()
        )),
    }
}

/// Whether the broker refused an operation for want of a permission
/// (ACCESS_REFUSED, 403).
fn is_access_refused(e: &lapin::Error) -> bool {
    amqp_reply_code(e) == Some(403)
}

/// Whether the broker answered that an exchange or queue does not exist
/// (NOT_FOUND, 404).
fn is_not_found(e: &lapin::Error) -> bool {
    amqp_reply_code(e) == Some(404)
}

fn amqp_reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}
