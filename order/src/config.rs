use std::time::Duration;

use foundation::config::{self, ConfigError, Env};

use messaging::outbox::relay::RelaySettings;
use platform::config::ServiceSettings;
use platform::rate_limit::{self, Rate, RateLimit, TrustedProxies};

/// Orders committed together at most, by default.
pub const DEFAULT_INTAKE_GROUP: u16 = 256;
/// Orders that may wait for a commit at most, by default; more are refused
/// at once rather than queued without bound while the database is slow.
/// Sixteen full groups, about 1.5 s of intake at the ~2,800 orders/s
/// measured (bench/BENCHMARKS.md), and as many as the benchmark's largest
/// closed loop has clients, so that it is never refused.
pub const DEFAULT_INTAKE_QUEUE: u16 = 4096;

/// Orders a client may place, by default: 10 a second, 20 at once after a
/// pause. Far above what a person orders, low enough that one address
/// cannot take a shop's stock in a minute. The benchmark, which places
/// thousands a second from one address, switches it off (bench/run.sh).
pub const DEFAULT_ORDER_RATE: Rate = Rate {
    per_second: 10.0,
    burst: 20,
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: ServiceSettings,
    pub relay: RelaySettings,
    /// Bearer token of the staff endpoints (the order listing); without one
    /// they are disabled.
    pub admin_token: Option<String>,
    /// The most orders committed together at intake (`INTAKE_GROUP`).
    pub intake_group: u16,
    /// The most orders waiting for a commit (`INTAKE_QUEUE`); beyond, `503`.
    pub intake_queue: u16,
    /// Orders per client (`ORDER_RATE_LIMIT`, `ORDER_RATE_BURST`); beyond,
    /// `429` with `Retry-After`, nothing ordered.
    pub order_rate_limit: RateLimit,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`);
    /// none by default: the client is the connection's peer.
    pub trusted_proxies: TrustedProxies,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let retention_hours = config::positive_u16(env, "OUTBOX_RETENTION_HOURS", 168)?;
        Ok(Self {
            common: ServiceSettings::from_env(env, "0.0.0.0:5002", "127.0.0.1:9002")?,
            relay: RelaySettings {
                retention: Duration::from_secs(3600 * u64::from(retention_hours)),
                ..RelaySettings::default()
            },
            admin_token: config::secret(env, "ADMIN_TOKEN")?,
            intake_group: config::positive_u16(env, "INTAKE_GROUP", DEFAULT_INTAKE_GROUP)?,
            intake_queue: config::positive_u16(env, "INTAKE_QUEUE", DEFAULT_INTAKE_QUEUE)?,
            order_rate_limit: rate_limit::rate_limit(
                env,
                "ORDER_RATE_LIMIT",
                "ORDER_RATE_BURST",
                RateLimit::PerClient(DEFAULT_ORDER_RATE),
            )?,
            trusted_proxies: rate_limit::trusted_proxies(env, "TRUSTED_PROXIES")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn orders_are_limited_per_client_by_default_and_the_limit_can_be_switched_off() {
        let unset: HashMap<&str, &str> = HashMap::new();
        let off = HashMap::from([("ORDER_RATE_LIMIT", "off")]);

        let default = Settings::from_env(&unset).unwrap();

        assert_eq!(
            default.order_rate_limit,
            RateLimit::PerClient(DEFAULT_ORDER_RATE)
        );
        assert!(default.trusted_proxies.is_empty());
        assert_eq!(
            Settings::from_env(&off).unwrap().order_rate_limit,
            RateLimit::Off
        );
    }

    #[test]
    fn a_bad_rate_limit_or_proxy_list_is_refused_by_name() {
        for (var, value) in [
            ("ORDER_RATE_LIMIT", "fast"),
            ("ORDER_RATE_BURST", "0"),
            ("TRUSTED_PROXIES", "edge"),
        ] {
            let env = HashMap::from([(var, value)]);

            let error = Settings::from_env(&env).unwrap_err();

            assert_eq!(error.var, var);
        }
    }
}
