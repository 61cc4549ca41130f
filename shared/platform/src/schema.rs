//! Waiting for the database schema this build expects. Services never
//! migrate: the `migration` command does, as a step of its own (compose's
//! `migrate`, the Kubernetes Job). A service that finds a migration it
//! knows not applied waits, before its consumers, relay and API touch any
//! table: alive (`/health` 200, so no orchestrator restarts it), not ready
//! (`/ready` 503 saying how many migrations are missing), every other path
//! `503` with `Retry-After`. A failing migration thus leaves services
//! waiting, not crash-looping, and replicas already serving keep serving.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use migration::SchemaState;
use sea_orm::DatabaseConnection;
use slog::{Logger, info, warn};

use crate::http::error_response;
use crate::listeners::Listeners;
use foundation::health::ServiceHealth;
use foundation::readiness::ReadinessReport;

/// How often a waiting service looks at the schema again.
const POLL: Duration = Duration::from_secs(1);

/// How often a service still waiting says so again in its log.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What a waiting service answers in `/ready` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// The database does not answer the schema check.
    Unavailable,
    /// Migrations this build knows are not applied.
    Pending(SchemaState),
}

impl Waiting {
    fn of(state: Result<SchemaState, sea_orm::DbErr>) -> Result<SchemaState, Self> {
        match state {
            Ok(state) if state.is_current() => Ok(state),
            Ok(state) => Err(Self::Pending(state)),
            Err(_) => Err(Self::Unavailable),
        }
    }

    fn database(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Pending(_) => "ok",
        }
    }

    fn schema(&self) -> String {
        match self {
            Self::Unavailable => "unknown (the database does not answer)".to_string(),
            Self::Pending(state) => state.missing(),
        }
    }

    fn report(&self) -> ReadinessReport {
        ReadinessReport {
            status: "not ready",
            checks: BTreeMap::from([
                ("database".to_string(), self.database().to_string()),
                ("schema".to_string(), self.schema()),
            ]),
        }
    }
}

/// Returns once every migration this build knows is applied to `db`;
/// until then serves the waiting answers on `listeners` (which the caller
/// keeps, to serve on once this returns): `/health` and `/ready` on the
/// admin listener, `503` for everything on both.
pub async fn wait_until_current(
    db: &DatabaseConnection,
    listeners: &Listeners,
    log: &Logger,
) -> anyhow::Result<()> {
    let mut waiting = match Waiting::of(foundation::db::bounded(migration::schema_state(db)).await)
    {
        Ok(state) => {
            log_current(&state, log);
            return Ok(());
        }
        Err(waiting) => waiting,
    };
    let started = Instant::now();
    log_waiting(&waiting, log);
    let shown = Arc::new(Mutex::new(waiting.clone()));
    let public = waiting_server(
        listeners
            .public
            .try_clone()
            .context("sharing the HTTP listener")?,
        shown.clone(),
        false,
    )?;
    let admin = waiting_server(
        listeners
            .admin
            .try_clone()
            .context("sharing the admin listener")?,
        shown.clone(),
        true,
    )?;
    let stops = [public.handle(), admin.handle()];
    // A server runs while its future is polled.
    let served = actix_web::rt::spawn(futures_util::future::try_join(public, admin));
    let mut logged = Instant::now();
    let state = loop {
        tokio::time::sleep(POLL).await;
        match Waiting::of(foundation::db::bounded(migration::schema_state(db)).await) {
            Ok(state) => break state,
            Err(now) => {
                if now != waiting || logged.elapsed() >= LOG_EVERY {
                    log_waiting(&now, log);
                    logged = Instant::now();
                }
                *shown
                    .lock()
                    .expect("never poisoned: no panics under the lock") = now.clone();
                waiting = now;
            }
        }
    };
    // Requests in flight get their answer; new connections wait in the
    // listeners' queues for the service's own servers.
    futures_util::future::join_all(stops.iter().map(|stop| stop.stop(true))).await;
    served
        .await
        .context("the waiting HTTP servers")?
        .context("the waiting HTTP servers")?;
    info!(log, "the database schema is current: starting";
        "waited_ms" => started.elapsed().as_millis());
    log_current(&state, log);
    Ok(())
}

fn log_waiting(waiting: &Waiting, log: &Logger) {
    match waiting {
        Waiting::Unavailable => warn!(
            log,
            "waiting for the database schema: the database does not answer"
        ),
        Waiting::Pending(state) => warn!(log,
            "waiting for the database schema: {}", state.missing();
            "pending" => state.pending.len(),
            "first_pending" => state.pending.first().map(String::as_str).unwrap_or_default()),
    }
}

fn log_current(state: &SchemaState, log: &Logger) {
    if !state.unknown.is_empty() {
        info!(log, "the database schema is ahead of this build (a newer release migrated); serving";
            "unknown_migrations" => state.unknown.join(","));
    }
}

/// A server of one worker answering every path as a waiting service does;
/// the `admin` one answers `/health` and `/ready` too.
fn waiting_server(
    listener: TcpListener,
    waiting: Arc<Mutex<Waiting>>,
    admin: bool,
) -> anyhow::Result<actix_web::dev::Server> {
    let health = web::Data::new(ServiceHealth::new());
    let waiting = web::Data::from(waiting);
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(health.clone())
            .app_data(waiting.clone());
        let app = if admin {
            app.route("/health", web::get().to(foundation::health::health))
                .route("/ready", web::get().to(not_ready))
        } else {
            app
        };
        app.default_service(web::to(not_yet))
    })
    .workers(1)
    // SIGTERM while waiting ends the process through `service::run`.
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("serving while waiting for the database schema")?
    .run();
    Ok(server)
}

async fn not_ready(waiting: web::Data<Mutex<Waiting>>) -> HttpResponse {
    let report = waiting
        .lock()
        .expect("never poisoned: no panics under the lock")
        .report();
    HttpResponse::ServiceUnavailable().json(report)
}

async fn not_yet(waiting: web::Data<Mutex<Waiting>>) -> HttpResponse {
    let schema = waiting
        .lock()
        .expect("never poisoned: no panics under the lock")
        .schema();
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("waiting for the database schema: {schema}"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_service_is_not_ready_and_says_what_is_missing() {
        let pending = Waiting::Pending(SchemaState {
            pending: vec!["m2".into()],
            unknown: vec![],
        });

        let report = pending.report();
        let unavailable = Waiting::Unavailable.report();

        assert!(!report.is_ready());
        assert_eq!(report.checks["database"], "ok");
        assert_eq!(
            report.checks["schema"],
            "1 migration not applied (run `migration up`)"
        );
        assert!(!unavailable.is_ready());
        assert_eq!(unavailable.checks["database"], "unavailable");
    }
}
