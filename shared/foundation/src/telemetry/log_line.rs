//! [`LogLine`]: a log line decided by pure code and written by an actor.

use slog::{Logger, Record, Serializer, info, warn};

/// A log line as data, so that which line follows from an outcome is
/// decided (and unit-tested) apart from the actor that writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// In the order given; written as `info!(log, ..; k => v, ..)` writes them.
    pub fields: Vec<(&'static str, FieldValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Number(i64),
}

impl From<&str> for FieldValue {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for FieldValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<u32> for FieldValue {
    fn from(number: u32) -> Self {
        Self::Number(number.into())
    }
}

impl From<i32> for FieldValue {
    fn from(number: i32) -> Self {
        Self::Number(number.into())
    }
}

impl LogLine {
    pub fn info(message: impl Into<String>) -> Self {
        Self::new(LogLevel::Info, message)
    }

    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(LogLevel::Warning, message)
    }

    fn new(level: LogLevel, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: impl Into<FieldValue>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    pub fn write(&self, log: &Logger) {
        let fields = Fields(&self.fields);
        match self.level {
            LogLevel::Info => info!(log, "{}", self.message; fields),
            LogLevel::Warning => warn!(log, "{}", self.message; fields),
        }
    }
}

struct Fields<'a>(&'a [(&'static str, FieldValue)]);

impl slog::KV for Fields<'_> {
    fn serialize(&self, _: &Record<'_>, serializer: &mut dyn Serializer) -> slog::Result {
        // slog's macros serialize the last pair first: the same order here
        // keeps every line as it was when the actors wrote it themselves.
        for (key, value) in self.0.iter().rev() {
            match value {
                FieldValue::Text(text) => serializer.emit_str(key, text)?,
                FieldValue::Number(number) => serializer.emit_i64(key, *number)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use slog::{Drain, o};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What `write` puts on the terminal, without the timestamp.
    fn rendered(write: impl FnOnce(&Logger)) -> String {
        let buffer = Buffer::default();
        let decorator = slog_term::PlainSyncDecorator::new(buffer.clone());
        let drain = slog_term::FullFormat::new(decorator)
            .use_custom_timestamp(|_: &mut dyn io::Write| Ok(()))
            .build()
            .fuse();
        write(&Logger::root(drain, o!("service" => "test")));
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_log_line_is_written_as_the_macros_write_it() {
        let by_macro = rendered(|log| {
            info!(log, "Stock for product {} reduced", "123";
                "requested" => 2u32, "available" => -1i32, "to" => "ada@example.com")
        });
        let by_line = rendered(|log| {
            LogLine::info("Stock for product 123 reduced")
                .with("requested", 2u32)
                .with("available", -1i32)
                .with("to", "ada@example.com")
                .write(log)
        });
        assert_eq!(by_line, by_macro);
        assert!(by_line.contains("to: ada@example.com, available: -1, requested: 2"));

        let by_macro = rendered(|log| warn!(log, "order not accepted"; "err" => %"refused"));
        let by_line = rendered(|log| {
            LogLine::warn("order not accepted")
                .with("err", "refused")
                .write(log)
        });
        assert_eq!(by_line, by_macro);
        assert!(by_line.starts_with(" WARN order not accepted"), "{by_line}");
    }
}
