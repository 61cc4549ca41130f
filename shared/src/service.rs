//! What every service's `main` does: read settings, set up logging, build
//! and run the service, and turn failures into one clear line and a
//! non-zero exit code.

use std::future::Future;
use std::process::ExitCode;

use slog::{Logger, error, info};

use crate::config::{ConfigError, Env, ProcessEnv};
use crate::telemetry;

/// A built service, ready to serve.
pub trait Service {
    /// Serves until told to stop; an error means the service failed.
    fn run_until_stopped(self) -> impl Future<Output = anyhow::Result<()>>;
}

/// Runs the service `name`: settings from `load`, then `build`, then serve.
/// SIGTERM or SIGINT while it is still starting (waiting for its database,
/// say) stops it cleanly too: exit code 0, as an orchestrator expects.
pub async fn run<S, A, Load, Build, Fut>(name: &'static str, load: Load, build: Build) -> ExitCode
where
    Load: FnOnce(&dyn Env) -> Result<S, ConfigError>,
    Build: FnOnce(S, Logger) -> Fut,
    Fut: Future<Output = anyhow::Result<A>>,
    A: Service,
{
    let settings = match load(&ProcessEnv) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let (log, guard) = telemetry::init(name);
    let result = async {
        let built = tokio::select! {
            built = build(settings, log.clone()) => Some(built?),
            _ = terminated() => None,
        };
        match built {
            Some(service) => service.run_until_stopped().await,
            None => {
                info!(log, "told to stop while starting");
                Ok(())
            }
        }
    }
    .await;
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

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Serves until SIGTERM or SIGINT, or until the service can no longer work
/// (`health` failed: a domain actor died); then stops taking requests,
/// drains `consumers` (their deliveries in hand are settled, the rest
/// return to the queue) and answers an error if the service failed, so the
/// process exits non-zero and its orchestrator restarts it.
pub async fn serve_until_stopped(
    mut server: actix_web::dev::Server,
    health: &crate::health::ServiceHealth,
    consumers: Vec<actix::Recipient<crate::consumer::Drain>>,
) -> anyhow::Result<()> {
    let handle = server.handle();
    let failure = tokio::select! {
        served = &mut server => {
            served?;
            None
        }
        reason = health.failed() => Some(reason),
    };
    if failure.is_some() {
        // The server future runs the server: it must be polled while it stops.
        let (_, served) = futures_util::future::join(handle.stop(true), server).await;
        served?;
    }
    let drain = || crate::consumer::Drain {
        timeout: crate::consumer::DRAIN_TIMEOUT,
    };
    futures_util::future::join_all(consumers.iter().map(|consumer| consumer.send(drain()))).await;
    match failure {
        Some(reason) => Err(anyhow::anyhow!("the service failed: {reason}")),
        None => Ok(()),
    }
}
