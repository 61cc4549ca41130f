//! `LOG_FORMAT` and `LOG_LEVEL`.

use super::{ConfigError, Env, raw};

/// How a service writes its log (`LOG_FORMAT`, `LOG_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// The least severe level written (release builds keep `debug`
    /// records: slog's `release_max_level_debug`).
    pub level: slog::Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per record (the default).
    Text,
    /// One JSON object per line: `ts`, `level`, `msg` and every key-value.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: slog::Level::Info,
        }
    }
}

pub fn logging(env: &dyn Env) -> Result<LogSettings, ConfigError> {
    let format = raw(env, "LOG_FORMAT", "text");
    let format = match format.to_ascii_lowercase().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        _ => {
            return Err(ConfigError {
                var: "LOG_FORMAT",
                value: format,
                reason: "expected text or json".into(),
            });
        }
    };
    let level = raw(env, "LOG_LEVEL", "info");
    let level = match level.to_ascii_lowercase().as_str() {
        "error" => slog::Level::Error,
        "warn" | "warning" => slog::Level::Warning,
        "info" => slog::Level::Info,
        "debug" => slog::Level::Debug,
        _ => {
            return Err(ConfigError {
                var: "LOG_LEVEL",
                value: level,
                reason: "expected error, warn, info or debug".into(),
            });
        }
    };
    Ok(LogSettings { format, level })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn logging_defaults_to_text_at_info_and_names_a_bad_value() {
        let json = HashMap::from([("LOG_FORMAT", "JSON"), ("LOG_LEVEL", "warn")]);
        let bad_format = HashMap::from([("LOG_FORMAT", "xml")]);
        let bad_level = HashMap::from([("LOG_LEVEL", "loud")]);

        assert_eq!(logging(&HashMap::new()).unwrap(), LogSettings::default());
        assert_eq!(
            logging(&json).unwrap(),
            LogSettings {
                format: LogFormat::Json,
                level: slog::Level::Warning,
            }
        );
        let error = logging(&bad_format).unwrap_err();
        assert_eq!((error.var, error.value.as_str()), ("LOG_FORMAT", "xml"));
        assert_eq!(logging(&bad_level).unwrap_err().var, "LOG_LEVEL");
    }
}
