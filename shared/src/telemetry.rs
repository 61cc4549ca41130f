//! One slog logger per process, written to stdout through slog-term. The
//! libraries' own records (lapin, sqlx, actix use the `log` crate) reach the
//! same logger, from warnings up. Log lines decided by pure code are
//! [`LogLine`]s.

use slog::{Drain, Logger, o};

mod log_line;

pub use log_line::{FieldValue, LogLevel, LogLine};

/// Keeps logging alive: dropping it flushes the records still buffered in
/// the async drain and detaches the libraries' records.
pub struct LogGuard {
    // Dropped first: library records stop before the drain is flushed.
    _libraries: slog_scope::GlobalLoggerGuard,
    _flush: slog_async::AsyncGuard,
}

/// Builds the process logger; keep the guard until exit.
pub fn init(service: &'static str) -> (Logger, LogGuard) {
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stdout());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = slog::LevelFilter::new(drain, slog::Level::Info).fuse();
    let (drain, flush) = slog_async::Async::new(drain)
        .chan_size(4096)
        // A full buffer slows logging down rather than losing records.
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .build_with_guard();
    let log = Logger::root(drain.fuse(), o!("service" => service));
    let libraries = forward_library_records(&log);
    (
        log,
        LogGuard {
            _libraries: libraries,
            _flush: flush,
        },
    )
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
