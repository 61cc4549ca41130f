//! What every service reads: where it listens, how long it waits for
//! clients, where PostgreSQL and RabbitMQ are, and how it consumes.

use std::net::SocketAddr;
use std::time::Duration;

use foundation::config::{CaBundle, ConfigError, Env, database_url, positive_u16, raw};
use messaging::config::{ConsumerSettings, amqp_ca, amqp_url, consumer};

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
    pub fn amqp(&self) -> messaging::amqp::Endpoint {
        messaging::amqp::Endpoint::new(&self.amqp_url, self.amqp_ca.clone())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use foundation::config::DEFAULT_DATABASE_URL;
    use messaging::config::DEFAULT_AMQP_URL;
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
}

/// Properties over generated settings, 256 cases each.
#[cfg(test)]
mod properties {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use foundation::config::redact_url;

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
        fn no_url_setting_ever_shows_its_password((url, password) in url_with_password()) {
            let env = HashMap::from([("DATABASE_URL", url.as_str()), ("AMQP_URL", url.as_str())]);

            let errors = [database_url(&env).err(), amqp_url(&env).err()];

            let redacted = redact_url(&url);
            prop_assert!(!redacted.contains(&password), "{} shows {}", redacted, password);
            for error in errors.into_iter().flatten() {
                prop_assert!(!error.to_string().contains(&password), "{} shows {}", error, password);
            }
        }

    }
}
