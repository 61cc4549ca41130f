use foundation::config::{self, ConfigError, Env};
use messaging::outbox::relay::RelaySettings;
use platform::config::ServiceSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: ServiceSettings,
    pub relay: RelaySettings,
    /// Bearer token of the staff endpoints; without one they are disabled.
    pub admin_token: Option<String>,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: ServiceSettings::from_env(env, "0.0.0.0:5001", "127.0.0.1:9001")?,
            relay: RelaySettings::default(),
            admin_token: config::secret(env, "ADMIN_TOKEN")?,
        })
    }
}
