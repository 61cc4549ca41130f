//! Typed settings read from environment variables, with defaults. A malformed
//! value is reported as one clear error naming the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod logging;

pub use logging::{LogFormat, LogSettings, logging};

/// The defaults are the development account `docker compose` sets up from
/// `.env.example`, so `docker compose up -d postgres rabbitmq` then
/// `cargo run -p order` works as it is.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://ecommerce:ecommerce-dev@localhost:5432/ecommerce";
pub const DEFAULT_AMQP_URL: &str = "amqp://ecommerce:ecommerce-dev@localhost:5672/%2f";

#[derive(Debug, thiserror::Error)]
#[error("invalid {var} {value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    /// Already redacted: safe to print.
    pub value: String,
    pub reason: String,
}

/// Source of raw settings; the process environment in production, a map in tests.
pub trait Env {
    fn get(&self, var: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl Env for std::collections::HashMap<&str, &str> {
    fn get(&self, var: &str) -> Option<String> {
        std::collections::HashMap::get(self, var).map(|v| v.to_string())
    }
}

/// Reads `var`, falling back to `default` when it is unset or blank.
fn raw(env: &dyn Env, var: &str, default: &str) -> String {
    env.get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

pub fn http_addr(env: &dyn Env, default: &str) -> Result<SocketAddr, ConfigError> {
    listen_addr(env, "HTTP_ADDR", default)
}

/// Where `/health`, `/ready` and `/metrics` are served (`ADMIN_ADDR`): a
/// listener apart from the public one, for probes and Prometheus only.
pub fn admin_addr(env: &dyn Env, default: &str) -> Result<SocketAddr, ConfigError> {
    listen_addr(env, "ADMIN_ADDR", default)
}

fn listen_addr(env: &dyn Env, var: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = raw(env, var, default);
    value.parse().map_err(|_| ConfigError {
        var,
        reason: "expected host:port with a numeric IP address, e.g. 0.0.0.0:5002".into(),
        value,
    })
}

/// The values of `sslmode` libpq and sqlx know.
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// `DATABASE_URL`. TLS is set in the URL as libpq sets it: `sslmode`
/// (`require`: encrypted, the certificate unchecked; `verify-ca`: signed by
/// a trusted CA; `verify-full`: and issued for the host in the URL) and
/// `sslrootcert`, a file of the CA certificates to trust (else Mozilla's
/// public roots). The same URL then works for the migration command and
/// `psql`. A CA file that cannot be read, or one given with an `sslmode`
/// that would not check the certificate against it, is refused here.
pub fn database_url(env: &dyn Env) -> Result<String, ConfigError> {
    const VAR: &str = "DATABASE_URL";
    let value = url_with_scheme(env, VAR, DEFAULT_DATABASE_URL, &["postgres", "postgresql"])?;
    let error = |reason: String| ConfigError {
        var: VAR,
        value: redact_url(&value),
        reason,
    };
    let url = url::Url::parse(&value).expect("checked by url_with_scheme");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.into_owned())
    };
    let mode = param("sslmode");
    if let Some(mode) = &mode
        && !SSL_MODES.contains(&mode.as_str())
    {
        return Err(error(format!(
            "sslmode must be one of {}",
            SSL_MODES.join(", ")
        )));
    }
    if let Some(root_cert) = param("sslrootcert") {
        if !matches!(mode.as_deref(), Some("verify-ca" | "verify-full")) {
            return Err(error(
                "sslrootcert is used only with sslmode=verify-ca or sslmode=verify-full (other modes do not check the certificate)".into(),
            ));
        }
        CaBundle::read(Path::new(&root_cert))
            .map_err(|reason| error(format!("sslrootcert: {reason}")))?;
    }
    Ok(value)
}

pub fn amqp_url(env: &dyn Env) -> Result<String, ConfigError> {
    let value = url_with_scheme(env, "AMQP_URL", DEFAULT_AMQP_URL, &["amqp", "amqps"])?;
    let error = |reason: &str| ConfigError {
        var: "AMQP_URL",
        value: redact_url(&value),
        reason: reason.into(),
    };
    // lapin's URI parser takes the host from `Url::domain`, which has none
    // for an IP literal in brackets, and silently connects to localhost.
    let url = url::Url::parse(&value).expect("checked by url_with_scheme");
    if url.domain().is_none() {
        return Err(error(
            "an IPv6 address as host is not supported (the AMQP client would connect to localhost instead); use a hostname, e.g. one that resolves to that address",
        ));
    }
    Ok(value)
}

/// What every service reads: where it listens, where PostgreSQL and
/// RabbitMQ are, and how it consumes.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The public API (`HTTP_ADDR`).
    pub http_addr: SocketAddr,
    /// Probes and metrics (`ADMIN_ADDR`).
    pub admin_addr: SocketAddr,
    pub database_url: String,
    pub amqp_url: String,
    /// The CA certificates RabbitMQ's certificate must chain to, with
    /// `amqps://` (`AMQP_CA_FILE`); without, Mozilla's public roots.
    pub amqp_ca: Option<CaBundle>,
    pub consumer: ConsumerSettings,
    pub http: HttpLimits,
}

impl ServiceSettings {
    /// Reads them, with the service's own default addresses. The admin
    /// listener defaults to loopback: it is opened to Prometheus and the
    /// orchestrator's probes by setting `ADMIN_ADDR`, never by accident.
    pub fn from_env(
        env: &dyn Env,
        default_http_addr: &str,
        default_admin_addr: &str,
    ) -> Result<Self, ConfigError> {
        let http_addr = http_addr(env, default_http_addr)?;
        let admin_addr = admin_addr(env, default_admin_addr)?;
        if admin_addr.port() != 0 && admin_addr.port() == http_addr.port() {
            return Err(ConfigError {
                var: "ADMIN_ADDR",
                value: admin_addr.to_string(),
                reason: format!(
                    "must use another port than HTTP_ADDR {http_addr}: the admin listener is kept apart from the public one"
                ),
            });
        }
        let amqp_url = amqp_url(env)?;
        Ok(Self {
            http_addr,
            admin_addr,
            database_url: database_url(env)?,
            amqp_ca: amqp_ca(env, &amqp_url)?,
            amqp_url,
            consumer: consumer(env)?,
            http: http_limits(env)?,
        })
    }

    /// The broker these settings name.
    pub fn amqp(&self) -> crate::amqp::Endpoint {
        crate::amqp::Endpoint::new(&self.amqp_url, self.amqp_ca.clone())
    }
}

/// CA certificates (PEM) that a server's certificate must chain to, read
/// once at startup: a file that cannot be read is a configuration error,
/// not a failure at the first connection.
#[derive(Clone)]
pub struct CaBundle {
    path: PathBuf,
    pem: Arc<str>,
}

impl CaBundle {
    /// Reads `path`, which must hold at least one PEM certificate; the
    /// error says why not.
    pub fn read(path: &Path) -> Result<Self, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;

        let shown = path.display();
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the CA file {shown}: {e}"))?;
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the CA file {shown} is not valid PEM: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("the CA file {shown} holds no PEM certificate"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            pem: pem.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, PEM-encoded.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The certificates, DER-encoded (checked readable by [`Self::read`]).
    pub fn certificates(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        CertificateDer::pem_slice_iter(self.pem.as_bytes())
            .filter_map(Result::ok)
            .collect()
    }
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CaBundle").field(&self.path).finish()
    }
}

/// `AMQP_CA_FILE`: the CA certificates RabbitMQ's certificate must chain
/// to. Only with an `amqps://` URL: set with `amqp://` it would protect
/// nothing, so it is refused.
pub fn amqp_ca(env: &dyn Env, amqp_url: &str) -> Result<Option<CaBundle>, ConfigError> {
    const VAR: &str = "AMQP_CA_FILE";
    let value = raw(env, VAR, "");
    if value.is_empty() {
        return Ok(None);
    }
    let error = |reason: String| ConfigError {
        var: VAR,
        value: value.clone(),
        reason,
    };
    if !amqp_url.starts_with("amqps:") {
        return Err(error(format!(
            "set, but AMQP_URL ({}) does not use TLS: use amqps:// or unset {VAR}",
            redact_url(amqp_url)
        )));
    }
    CaBundle::read(Path::new(&value)).map(Some).map_err(error)
}

/// How long the HTTP edge waits for a client, and how many it serves, so
/// that slow or idle clients cannot hold the service: a connection that
/// stalls is closed after a bounded time whatever it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's head must arrive within this (`HTTP_HEAD_TIMEOUT_SECS`,
    /// 5, actix-web's own); else `408` and the connection closes.
    pub head_timeout: Duration,
    /// A request's body must arrive within this once its handler reads it
    /// (`HTTP_BODY_TIMEOUT_SECS`, 10: 16 KiB at 1.6 KiB/s); else `408` and
    /// the connection closes.
    pub body_timeout: Duration,
    /// An idle keep-alive connection closes after this
    /// (`HTTP_KEEP_ALIVE_SECS`, 5, actix-web's own). A proxy that keeps
    /// connections to the service open must close idle ones sooner.
    pub keep_alive: Duration,
    /// Connections served at once by each worker thread (one per core);
    /// further ones wait in the listen backlog (`HTTP_MAX_CONNECTIONS`,
    /// 4096, where actix-web has 25,000: as many as the benchmark's largest
    /// run opens, so that one worker alone could serve it).
    pub max_connections: u16,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
            max_connections: 4096,
        }
    }
}

pub fn http_limits(env: &dyn Env) -> Result<HttpLimits, ConfigError> {
    let defaults = HttpLimits::default();
    let seconds = |var, default: Duration| -> Result<Duration, ConfigError> {
        let default = u16::try_from(default.as_secs()).expect("defaults fit");
        Ok(Duration::from_secs(positive_u16(env, var, default)?.into()))
    };
    Ok(HttpLimits {
        head_timeout: seconds("HTTP_HEAD_TIMEOUT_SECS", defaults.head_timeout)?,
        body_timeout: seconds("HTTP_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
        keep_alive: seconds("HTTP_KEEP_ALIVE_SECS", defaults.keep_alive)?,
        max_connections: positive_u16(env, "HTTP_MAX_CONNECTIONS", defaults.max_connections)?,
    })
}

/// How a service consumes from RabbitMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// Unacknowledged deliveries the broker may hand a consumer at once
    /// (`AMQP_PREFETCH`, default 64).
    pub prefetch: u16,
    /// The most events handed to the domain actor, and so committed, at
    /// once (`CONSUMER_BATCH`, default 64).
    pub batch: u16,
    /// Deliveries with a larger body are dead-lettered before they are
    /// decoded (`AMQP_MAX_MESSAGE_BYTES`, default 1 MiB).
    pub max_message_bytes: usize,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        // Measured on 2 cores (bench/BENCHMARKS.md, "Tuning"): 32 leaves
        // the consumers behind intake (end to end ~1,650/s); 128 and more
        // keep up (~2,600/s) but take the CPU intake needs (~2,800/s
        // accepted, p99 70 ms); 64 meets both targets. A batch as large as
        // the prefetch lets one commit take every delivery in hand.
        Self {
            prefetch: 64,
            batch: 64,
            max_message_bytes: crate::events::MAX_EVENT_BYTES,
        }
    }
}

pub fn consumer(env: &dyn Env) -> Result<ConsumerSettings, ConfigError> {
    let defaults = ConsumerSettings::default();
    Ok(ConsumerSettings {
        prefetch: positive_u16(env, "AMQP_PREFETCH", defaults.prefetch)?,
        batch: positive_u16(env, "CONSUMER_BATCH", defaults.batch)?,
        max_message_bytes: message_bytes(
            env,
            "AMQP_MAX_MESSAGE_BYTES",
            defaults.max_message_bytes,
        )?,
    })
}

/// The topology the `topology` command declares: `AMQP_DELIVERY_LIMIT`,
/// redeliveries of a failing message before its queue dead-letters it
/// (default 10).
pub fn topology(env: &dyn Env) -> Result<crate::amqp::Topology, ConfigError> {
    let defaults = crate::amqp::Topology::default();
    Ok(crate::amqp::Topology {
        delivery_limit: positive_u16(env, "AMQP_DELIVERY_LIMIT", defaults.delivery_limit)?,
    })
}

/// RabbitMQ delivers no message over 512 MiB, whatever it is configured to.
const BROKER_MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// A message size in bytes, from 1 to RabbitMQ's own maximum.
fn message_bytes(env: &dyn Env, var: &'static str, default: usize) -> Result<usize, ConfigError> {
    let value = raw(env, var, &default.to_string());
    match value.parse::<usize>() {
        Ok(n) if (1..=BROKER_MAX_MESSAGE_BYTES).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            var,
            reason: format!("expected a number of bytes from 1 to {BROKER_MAX_MESSAGE_BYTES}"),
            value,
        }),
    }
}

/// A positive integer setting, e.g. a prefetch count.
pub fn positive_u16(env: &dyn Env, var: &'static str, default: u16) -> Result<u16, ConfigError> {
    let value = raw(env, var, &default.to_string());
    match value.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError {
            var,
            reason: "expected an integer from 1 to 65535".into(),
            value,
        }),
    }
}

/// An optional secret such as a token: unset or blank means none. Never
/// echoed in errors.
pub fn secret(env: &dyn Env, var: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(value) = env
        .get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if value.len() < 16 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError {
            var,
            value: "<redacted>".into(),
            reason: "expected at least 16 characters without spaces".into(),
        });
    }
    Ok(Some(value))
}

fn url_with_scheme(
    env: &dyn Env,
    var: &'static str,
    default: &str,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    let value = raw(env, var, default);
    let error = |reason: String| ConfigError {
        var,
        value: redact_url(&value),
        reason,
    };
    let url = url::Url::parse(&value).map_err(|e| error(format!("not a URL ({e})")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(error(format!(
            "scheme must be one of {}",
            schemes.join(", ")
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("the URL names no host".into()));
    }
    Ok(value)
}

/// What of a URL may be logged: scheme, user, host, port and path (the
/// database or vhost). Never the password, nor the query, which may carry
/// one (`?password=`).
pub fn redact_url(raw: &str) -> String {
    // Not a URL: it may still hold a secret, so show nothing of it.
    let Ok(url) = url::Url::parse(raw) else {
        return "<unparseable URL>".to_string();
    };
    // No authority (`postgres:u:pw@db`): everything after the scheme is one
    // opaque path that may hold the password.
    if url.cannot_be_a_base() {
        return format!("{}:<redacted>", url.scheme());
    }
    let mut redacted = format!("{}://", url.scheme());
    if !url.username().is_empty() {
        redacted.push_str(url.username());
        redacted.push('@');
    }
    redacted.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        redacted.push_str(&format!(":{port}"));
    }
    redacted.push_str(url.path());
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let env = HashMap::from([("HTTP_ADDR", "  ")]);
        assert_eq!(http_addr(&env, "0.0.0.0:5002").unwrap().port(), 5002);
        assert_eq!(database_url(&env).unwrap(), DEFAULT_DATABASE_URL);
        assert_eq!(amqp_url(&env).unwrap(), DEFAULT_AMQP_URL);
    }

    #[test]
    fn the_admin_listener_is_apart_from_the_public_one() {
        let defaults = HashMap::new();
        let same_port = HashMap::from([
            ("HTTP_ADDR", "0.0.0.0:8080"),
            ("ADMIN_ADDR", "0.0.0.0:8080"),
        ]);
        let malformed = HashMap::from([("ADMIN_ADDR", "9000")]);

        let settings =
            ServiceSettings::from_env(&defaults, "0.0.0.0:5002", "127.0.0.1:9002").unwrap();
        let clash =
            ServiceSettings::from_env(&same_port, "0.0.0.0:5002", "127.0.0.1:9002").unwrap_err();
        let unparsed =
            ServiceSettings::from_env(&malformed, "0.0.0.0:5002", "127.0.0.1:9002").unwrap_err();

        assert_eq!(settings.admin_addr, "127.0.0.1:9002".parse().unwrap());
        assert_eq!(clash.var, "ADMIN_ADDR");
        assert!(clash.reason.contains("HTTP_ADDR"), "{clash}");
        assert_eq!(unparsed.var, "ADMIN_ADDR");
    }

    #[test]
    fn malformed_values_name_the_variable_and_hide_the_password() {
        let env = HashMap::from([
            ("HTTP_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://u:hunter2@db/x"),
            ("AMQP_URL", "amqps://u:hunter2@[::1]/%2f"),
        ]);
        let errors = [
            http_addr(&env, "0.0.0.0:1").unwrap_err(),
            database_url(&env).unwrap_err(),
            amqp_url(&env).unwrap_err(),
        ];
        let vars: Vec<_> = errors.iter().map(|e| e.var).collect();
        assert_eq!(vars, ["HTTP_ADDR", "DATABASE_URL", "AMQP_URL"]);
        for error in errors {
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }

    /// A file in the temporary directory holding `contents`, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// PEM-framed: what is checked at startup is that the file can be read
    /// and holds certificates; the TLS handshake checks what they say.
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_database_ca_is_read_at_startup_and_only_with_a_verifying_sslmode() {
        let ca = TempFile::new(PEM);
        let good = format!(
            "postgres://u:pw@db/x?sslmode=verify-full&sslrootcert={}",
            ca.path()
        );
        let cases = [
            (
                "postgres://u:hunter2@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
                    .to_string(),
                "cannot read the CA file /nonexistent/ca.pem",
            ),
            (
                format!(
                    "postgres://u:hunter2@db/x?sslmode=require&sslrootcert={}",
                    ca.path()
                ),
                "only with sslmode=verify-ca or sslmode=verify-full",
            ),
            (
                "postgres://u:hunter2@db/x?sslmode=verify_full".to_string(),
                "sslmode must be one of",
            ),
        ];

        for (url, reason) in &cases {
            let error = database_url(&HashMap::from([("DATABASE_URL", url.as_str())])).unwrap_err();

            assert_eq!(error.var, "DATABASE_URL");
            assert!(error.reason.contains(reason), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        for url in [good.as_str(), "postgres://u:pw@db/x?sslmode=require"] {
            assert_eq!(
                database_url(&HashMap::from([("DATABASE_URL", url)])).unwrap(),
                url
            );
        }
    }

    #[test]
    fn an_amqp_ca_file_is_read_at_startup_and_only_with_amqps() {
        let ca = TempFile::new(PEM);
        let not_pem = TempFile::new("not a certificate");
        let tls = "amqps://u:pw@mq:5671/%2f";
        let cases = [
            ("amqp://u:hunter2@mq/%2f", ca.path(), "does not use TLS"),
            (tls, "/nonexistent/ca.pem", "cannot read the CA file"),
            (tls, not_pem.path(), "holds no PEM certificate"),
        ];

        for (url, file, reason) in cases {
            let env = HashMap::from([("AMQP_URL", url), ("AMQP_CA_FILE", file)]);

            let error = ServiceSettings::from_env(&env, "0.0.0.0:1", "127.0.0.1:2").unwrap_err();

            assert_eq!(error.var, "AMQP_CA_FILE");
            assert!(error.reason.contains(reason), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        let env = HashMap::from([("AMQP_URL", tls), ("AMQP_CA_FILE", ca.path())]);
        let settings = ServiceSettings::from_env(&env, "0.0.0.0:1", "127.0.0.1:2").unwrap();
        assert_eq!(settings.amqp_ca.unwrap().pem(), PEM);
    }

    #[test]
    fn http_limits_are_read_in_seconds_and_zero_is_refused() {
        let env = HashMap::from([
            ("HTTP_BODY_TIMEOUT_SECS", "3"),
            ("HTTP_MAX_CONNECTIONS", "64"),
        ]);
        assert_eq!(
            http_limits(&env).unwrap(),
            HttpLimits {
                body_timeout: Duration::from_secs(3),
                max_connections: 64,
                ..HttpLimits::default()
            }
        );
        let env = HashMap::from([("HTTP_KEEP_ALIVE_SECS", "0")]);
        assert_eq!(http_limits(&env).unwrap_err().var, "HTTP_KEEP_ALIVE_SECS");
    }

    #[test]
    fn positive_u16_rejects_zero_and_words() {
        for bad in ["0", "-1", "many", "70000"] {
            let env = HashMap::from([("AMQP_PREFETCH", bad)]);
            assert!(positive_u16(&env, "AMQP_PREFETCH", 10).is_err(), "{bad}");
        }
        let env = HashMap::from([("AMQP_PREFETCH", "7")]);
        assert_eq!(positive_u16(&env, "AMQP_PREFETCH", 10).unwrap(), 7);
    }

    #[test]
    fn the_message_size_limit_defaults_to_the_event_limit_and_is_bounded() {
        let unset: HashMap<&str, &str> = HashMap::new();
        assert_eq!(
            consumer(&unset).unwrap().max_message_bytes,
            crate::events::MAX_EVENT_BYTES
        );
        let set = HashMap::from([("AMQP_MAX_MESSAGE_BYTES", "4096")]);
        assert_eq!(consumer(&set).unwrap().max_message_bytes, 4096);
        for bad in ["0", "-1", "1MiB", "536870913"] {
            let env = HashMap::from([("AMQP_MAX_MESSAGE_BYTES", bad)]);
            assert_eq!(
                consumer(&env).unwrap_err().var,
                "AMQP_MAX_MESSAGE_BYTES",
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_are_optional_long_enough_and_never_echoed() {
        let unset: HashMap<&str, &str> = HashMap::new();
        assert_eq!(secret(&unset, "ADMIN_TOKEN").unwrap(), None);
        let short = HashMap::from([("ADMIN_TOKEN", "hunter2")]);
        let error = secret(&short, "ADMIN_TOKEN").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let good = HashMap::from([("ADMIN_TOKEN", "0123456789abcdef")]);
        assert_eq!(
            secret(&good, "ADMIN_TOKEN").unwrap().as_deref(),
            Some("0123456789abcdef")
        );
    }

    #[test]
    fn redacted_urls_keep_only_scheme_user_host_port_and_path() {
        let cases = [
            (
                "postgres://u:pw@db:5432/x?password=hunter2&sslmode=disable",
                "postgres://u@db:5432/x",
            ),
            (
                "amqp://guest:secret@mq:5672/%2f",
                "amqp://guest@mq:5672/%2f",
            ),
            (
                "amqp://:secret@[::1]:5672/%2f#frag",
                "amqp://[::1]:5672/%2f",
            ),
            ("postgres://db/x", "postgres://db/x"),
            ("postgres:u:hunter2@db", "postgres:<redacted>"),
            ("not a url hunter2", "<unparseable URL>"),
        ];
        for (raw, redacted) in cases {
            assert_eq!(redact_url(raw), redacted, "{raw}");
        }
    }

    #[test]
    fn an_ipv6_amqp_host_is_refused_rather_than_silently_replaced() {
        let raw = "amqp://guest:guest@[::1]:5672/%2f";
        // Why: lapin would connect to localhost, whatever the address.
        let parsed: lapin::uri::AMQPUri = raw.parse().unwrap();
        assert_eq!(parsed.authority.host, "localhost");

        let error = amqp_url(&HashMap::from([("AMQP_URL", raw)])).unwrap_err();

        assert_eq!(error.var, "AMQP_URL");
        assert_eq!(error.value, "amqp://guest@[::1]:5672/%2f");
        assert!(error.reason.contains("use a hostname"), "{error}");
        for host in ["127.0.0.1", "rabbitmq", "mq.example.com"] {
            let url = format!("amqp://guest:guest@{host}:5672/%2f");
            let env = HashMap::from([("AMQP_URL", url.as_str())]);
            assert_eq!(amqp_url(&env).unwrap(), url);
        }
    }
}

/// Properties over generated settings, 256 cases each (stated so that the
/// unit tests stay fast).
#[cfg(test)]
mod properties {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// A URL of `scheme`, whose password is a token found nowhere else in it.
    fn url_with_password() -> impl Strategy<Value = (String, String)> {
        (
            "postgres|postgresql|amqp|amqps|mysql|[a-z]{1,6}",
            "[a-z]{0,6}",
            "PW[A-Z0-9%@:]{4,12}",
            "[a-z]{1,8}(\\.[a-z]{1,5})?|\\[::1\\]|127\\.0\\.0\\.1|",
            proptest::option::of(any::<u16>()),
            "(/[a-z%0-9]{0,8})?(\\?[a-z=&]{0,10})?",
        )
            .prop_map(|(scheme, user, password, host, port, rest)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                (
                    format!("{scheme}://{user}:{password}@{host}{port}{rest}"),
                    password,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_positive_u16_is_read_exactly_when_it_is_one_to_65535(value in "[ 0-9+-]{0,7}|.{0,7}") {
            let env = HashMap::from([("AMQP_PREFETCH", value.as_str())]);

            let read = positive_u16(&env, "AMQP_PREFETCH", 9);

            match value.trim() {
                "" => prop_assert_eq!(read.unwrap(), 9),
                set => match set.parse::<u16>() {
                    Ok(n) if n > 0 => prop_assert_eq!(read.unwrap(), n),
                    _ => prop_assert_eq!(read.unwrap_err().var, "AMQP_PREFETCH"),
                },
            }
        }

        #[test]
        fn no_url_setting_ever_shows_its_password((url, password) in url_with_password()) {
            let env = HashMap::from([("DATABASE_URL", url.as_str()), ("AMQP_URL", url.as_str())]);

            let errors = [database_url(&env).err(), amqp_url(&env).err()];

            let redacted = redact_url(&url);
            prop_assert!(!redacted.contains(&password), "{} shows {}", redacted, password);
            for error in errors.into_iter().flatten() {
                prop_assert!(!error.to_string().contains(&password), "{} shows {}", error, password);
            }
        }

        #[test]
        fn a_secret_is_never_echoed(value in ".{0,24}") {
            let env = HashMap::from([("ADMIN_TOKEN", value.as_str())]);

            match secret(&env, "ADMIN_TOKEN") {
                Ok(token) => prop_assert_eq!(
                    token.as_deref(),
                    Some(value.trim()).filter(|v| !v.is_empty())
                ),
                Err(e) => prop_assert!(value.trim().len() < 2 || !e.to_string().contains(value.trim())),
            }
        }

        #[test]
        fn any_log_settings_are_read_or_refused_by_name(format in ".{0,8}", level in ".{0,8}") {
            let env = HashMap::from([("LOG_FORMAT", format.as_str()), ("LOG_LEVEL", level.as_str())]);

            if let Err(e) = logging(&env) {
                prop_assert!(e.var == "LOG_FORMAT" || e.var == "LOG_LEVEL");
            }
        }
    }
}
