//! What every service's `main` does: read settings, set up logging, run,
//! and turn failures into one clear line and a non-zero exit code.

use std::future::Future;
use std::process::ExitCode;

use slog::{Logger, error, info};

use crate::config::{ConfigError, Env, ProcessEnv};
use crate::telemetry;

pub async fn run<S, Load, Run, Fut>(name: &'static str, load: Load, run: Run) -> ExitCode
where
    Load: FnOnce(&dyn Env) -> Result<S, ConfigError>,
    Run: FnOnce(S, Logger) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = match load(&ProcessEnv) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let (log, guard) = telemetry::init(name);
    let result = run(settings, log.clone()).await;
    let code = match result {
        Ok(()) => {
            info!(log, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(log, "stopped with an error"; "err" => format!("{e:#}"));
            ExitCode::FAILURE
        }
    };
    // Flush buffered log records before the process exits.
    drop(log);
    drop(guard);
    code
}
