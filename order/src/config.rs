use std::net::SocketAddr;

use std::time::Duration;

use shared::config::{self, ConfigError, ConsumerSettings, Env};

use shared::outbox::relay::RelaySettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub amqp_url: String,
    pub relay: RelaySettings,
    pub consumer: ConsumerSettings,
    /// Bearer token of the staff endpoints (the order listing); without one
    /// they are disabled.
    pub admin_token: Option<String>,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http_addr: config::http_addr(env, "0.0.0.0:5002")?,
            database_url: config::database_url(env)?,
            amqp_url: config::amqp_url(env)?,
            relay: RelaySettings {
                retention: Duration::from_secs(
                    3600 * u64::from(config::positive_u16(env, "OUTBOX_RETENTION_HOURS", 168)?),
                ),
                ..RelaySettings::default()
            },
            consumer: config::consumer(env)?,
            admin_token: config::secret(env, "ADMIN_TOKEN")?,
        })
    }
}
