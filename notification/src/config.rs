use foundation::config::{ConfigError, Env};
use platform::config::ServiceSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: ServiceSettings,
}

impl Settings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: ServiceSettings::from_env(env, "0.0.0.0:5003", "127.0.0.1:9003")?,
        })
    }
}
