use std::time::Duration;

use shared::config::{self, ConfigError, Env, ServiceSettings};
use shared::outbox::relay::RelaySettings;

/// Orders committed together at most, by default.
pub const DEFAULT_INTAKE_GROUP: u16 = 256;
/// Orders that may wait for a commit at most, by default; more are refused
/// at once rather than queued without bound while the database is slow.
/// Sixteen full groups, about 1.5 s of intake at the ~2,800 orders/s
/// measured (bench/BENCHMARKS.md), and as many as the benchmark's largest
/// closed loop has clients, so that it is never refused.
pub const DEFAULT_INTAKE_QUEUE: u16 = 4096;

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
        })
    }
}
