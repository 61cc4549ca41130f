//! How a service reaches RabbitMQ and consumes from it: `AMQP_URL`,
//! `AMQP_CA_FILE`, the consumer settings, and the topology the `topology`
//! command declares.

use std::path::Path;

use foundation::config::{
    CaBundle, ConfigError, Env, positive_u16, raw, redact_url, url_with_scheme,
};

pub const DEFAULT_AMQP_URL: &str = "amqp://ecommerce:ecommerce-dev@localhost:5672/%2f";

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
            max_message_bytes: contracts::events::MAX_EVENT_BYTES,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn an_amqp_ca_file_is_read_at_startup_and_only_with_amqps() {
        // PEM-framed: startup checks that the file can be read and holds
        // certificates; the TLS handshake checks what they say.
        const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
        let dir = std::env::temp_dir().join(format!("amqp-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let (ca, not_pem) = (dir.join("ca.pem"), dir.join("not.pem"));
        std::fs::write(&ca, PEM).unwrap();
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let (ca, not_pem) = (ca.to_str().unwrap(), not_pem.to_str().unwrap());
        let tls = "amqps://u:pw@mq:5671/%2f";
        let cases = [
            ("amqp://u:hunter2@mq/%2f", ca, "does not use TLS"),
            (tls, "/nonexistent/ca.pem", "cannot read the CA file"),
            (tls, not_pem, "holds no PEM certificate"),
        ];

        let errors: Vec<_> = cases
            .iter()
            .map(|(url, file, _)| {
                amqp_ca(&HashMap::from([("AMQP_CA_FILE", *file)]), url).unwrap_err()
            })
            .collect();
        let read = amqp_ca(&HashMap::from([("AMQP_CA_FILE", ca)]), tls).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        for ((_, _, reason), error) in cases.iter().zip(errors) {
            assert_eq!(error.var, "AMQP_CA_FILE");
            assert!(error.reason.contains(reason), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        assert_eq!(read.unwrap().pem(), PEM);
        assert!(amqp_ca(&HashMap::new(), tls).unwrap().is_none());
    }

    #[test]
    fn the_message_size_limit_defaults_to_the_event_limit_and_is_bounded() {
        let unset: HashMap<&str, &str> = HashMap::new();
        assert_eq!(
            consumer(&unset).unwrap().max_message_bytes,
            contracts::events::MAX_EVENT_BYTES
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
