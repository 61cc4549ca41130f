//! One slog logger per process, written to stdout through slog-term.

use slog::{Drain, Logger, o};

/// Builds the process logger. Keep the guard alive until exit: dropping it
/// flushes records still buffered in the async drain.
pub fn init(service: &'static str) -> (Logger, slog_async::AsyncGuard) {
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stdout());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = slog::LevelFilter::new(drain, slog::Level::Info).fuse();
    let (drain, guard) = slog_async::Async::new(drain)
        .chan_size(4096)
        // A full buffer slows logging down rather than losing records.
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .build_with_guard();
    (Logger::root(drain.fuse(), o!("service" => service)), guard)
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
