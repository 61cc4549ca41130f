//! One slog logger per process, written to stdout: text lines through
//! slog-term, or JSON lines through slog-json (`LOG_FORMAT`), from
//! `LOG_LEVEL` up. The libraries' own records (lapin, sqlx, actix use the
//! `log` crate) reach the same logger, from warnings up. Log lines decided
//! by pure code are [`LogLine`]s.

use std::io::Write;

use slog::{Drain, Logger, o};

use crate::config::{LogFormat, LogSettings};

mod log_line;
mod trace;

pub use log_line::{FieldValue, LogLevel, LogLine};
pub use trace::{TRACEPARENT_HEADER, trace_id, traceparent_for};

/// Keeps logging alive: dropping it flushes the records still buffered in
/// the async drain and detaches the libraries' records.
pub struct LogGuard {
    // Dropped first: library records stop before the drain is flushed.
    _libraries: slog_scope::GlobalLoggerGuard,
    _flush: slog_async::AsyncGuard,
}

/// The drain writing `settings.format` to `out`, from `settings.level` up.
fn formatted<W: Write + Send + 'static>(
    settings: LogSettings,
    out: W,
) -> Box<dyn Drain<Ok = (), Err = slog::Never> + Send> {
    match settings.format {
        LogFormat::Text => {
            let decorator = slog_term::PlainSyncDecorator::new(out);
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            Box::new(slog::LevelFilter::new(drain, settings.level).fuse())
        }
        LogFormat::Json => {
            let drain = slog_json::Json::new(out).add_default_keys().build().fuse();
            Box::new(slog::LevelFilter::new(drain, settings.level).fuse())
        }
    }
}

/// Builds the process logger; keep the guard until exit.
pub fn init(service: &'static str, settings: LogSettings) -> (Logger, LogGuard) {
    let drain = formatted(settings, std::io::stdout());
    let (drain, flush) = slog_async::Async::new(drain)
        .chan_size(4096)
        // A full buffer slows logging down rather than losing records.
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .build_with_guard();
    // Filtered before the channel too: a record below the level (the access
    // line, at debug) costs a comparison, not a trip to the writer thread.
    let drain = slog::LevelFilter::new(drain.fuse(), settings.level).fuse();
    let log = Logger::root(drain, o!("service" => service));
    let libraries = forward_library_records(&log);
    (
        log,
        LogGuard {
            _libraries: libraries,
            _flush: flush,
        },
    )
}

/// The logger for the lines about one event: its id, its order's id, and
/// the id of the request that placed the order, when known.
pub fn event_logger(
    log: &Logger,
    event_id: uuid::Uuid,
    order_id: uuid::Uuid,
    request_id: Option<&str>,
) -> Logger {
    with_request_id(log, request_id).new(o!(
        "event_id" => event_id.to_string(),
        "order_id" => order_id.to_string(),
    ))
}

/// `log`, with the key `request_id` when there is one.
pub fn with_request_id(log: &Logger, request_id: Option<&str>) -> Logger {
    match request_id {
        Some(request_id) => log.new(o!("request_id" => request_id.to_string())),
        None => log.clone(),
    }
}

/// Sends the `log` crate's records, from warnings up, to `log`.
fn forward_library_records(log: &Logger) -> slog_scope::GlobalLoggerGuard {
    let guard = slog_scope::set_global_logger(log.new(o!("from" => "library")));
    // Fails only if a `log` logger is already set: then that one keeps them.
    let _ = slog_stdlog::init_with_level(log::Level::Warn);
    guard
}

/// Logger for tests: silent unless `TEST_LOG` is set.
pub fn test_logger() -> Logger {
    if std::env::var_os("TEST_LOG").is_some() {
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        let drain = slog_term::FullFormat::new(decorator).build().fuse();
        Logger::root(drain, o!())
    } else {
        Logger::root(slog::Discard, o!())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Keeps the message of every record.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Drain for Recorder {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            self.0.lock().unwrap().push(record.msg().to_string());
            Ok(())
        }
    }

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_format_writes_one_object_per_line_with_every_key_from_the_level_up() {
        // Arrange
        let out = Captured::default();
        let settings = LogSettings {
            format: LogFormat::Json,
            level: slog::Level::Info,
        };
        let log = Logger::root(
            Mutex::new(formatted(settings, out.clone())).fuse(),
            o!("service" => "order"),
        );

        // Act
        slog::info!(log, "order confirmed"; "order_id" => "01a2");
        slog::debug!(log, "below the level");
        slog::warn!(log, "could not settle delivery"; "attempt" => 3);

        // Assert
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "order confirmed");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["order_id"], "01a2");
        assert_eq!(lines[0]["service"], "order");
        assert!(lines[0]["ts"].is_string());
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["attempt"], 3);
    }

    #[test]
    fn text_format_keeps_the_original_lines() {
        let out = Captured::default();
        let log = Logger::root(
            Mutex::new(formatted(LogSettings::default(), out.clone())).fuse(),
            o!(),
        );

        slog::info!(log, "[x] PRODUCT: Received order for product: 123");

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("INFO [x] PRODUCT: Received order for product: 123"),
            "{text}"
        );
    }

    #[test]
    fn library_warnings_reach_the_service_logger_and_their_chatter_does_not() {
        // Arrange
        let records = Arc::new(Mutex::new(vec![]));
        let log = Logger::root(Recorder(records.clone()).fuse(), o!());
        let _guard = forward_library_records(&log);

        // Act: what lapin or sqlx would log.
        log::info!("heartbeat sent");
        log::warn!("connection to the broker lost");

        // Assert
        assert_eq!(*records.lock().unwrap(), ["connection to the broker lost"]);
    }
}
