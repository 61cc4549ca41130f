use std::net::SocketAddr;

use shared::config::{self, ConfigError, ConsumerSettings, Env};

#[derive(Debug, Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub amqp_url: String,
    pub consumer: ConsumerSettings,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http_addr: config::http_addr(env, "0.0.0.0:5003")?,
            database_url: config::database_url(env)?,
            amqp_url: config::amqp_url(env)?,
            consumer: config::consumer(env)?,
        })
    }
}
