//! Whether a service can take work now: `GET /ready`. Liveness (`/health`)
//! says the process works; readiness says its dependencies do: the database
//! answers, and every subscription is attached to its queue (which needs
//! the broker). It follows reality both ways: an outage turns it `503`
//! within a probe, and it comes back by itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use slog::{Logger, warn};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::coalesce::Coalesced;
use crate::outage::Probe;

/// How long the database may take to answer the readiness probe.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(1);

/// A queue and whether the broker is delivering from it.
type Watched = (String, watch::Receiver<bool>);

/// The checks behind `GET /ready`; cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    database: Probe,
    subscriptions: Arc<Mutex<Vec<Watched>>>,
    /// Probes arriving together share one database query.
    checking: Arc<Coalesced<ReadinessReport>>,
    log: Logger,
}

/// The body of `GET /ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReadinessReport {
    /// `ready` or `not ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency: `database`, and every queue the service consumes,
    /// with `ok` or, in plain words, what is wrong.
    #[schema(example = json!({"database": "ok", "product.order_created": "ok"}))]
    pub checks: BTreeMap<String, String>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

impl Readiness {
    pub fn new(database: Probe, log: Logger) -> Self {
        Self {
            database,
            subscriptions: Arc::default(),
            checking: Arc::default(),
            log,
        }
    }

    /// Counts `queue` as attached while `attached` says so.
    pub fn watch(&self, queue: String, attached: watch::Receiver<bool>) {
        self.subscriptions
            .lock()
            .expect("never poisoned: no panics under the lock")
            .push((queue, attached));
    }

    /// Checks every dependency; a caller arriving while a check runs gets
    /// that check's report.
    pub async fn check(&self) -> ReadinessReport {
        let readiness = self.clone();
        self.checking
            .run(move || Box::pin(async move { readiness.check_now().await }))
            .await
    }

    async fn check_now(&self) -> ReadinessReport {
        let mut checks = BTreeMap::new();
        let database = match tokio::time::timeout(DATABASE_TIMEOUT, (self.database)()).await {
            Ok(Ok(())) => "ok".to_string(),
            // The database's own words go to the log, not to the caller.
            Ok(Err(e)) => {
                warn!(self.log, "readiness: the database is unavailable"; "err" => e);
                "unavailable".to_string()
            }
            Err(_) => format!("no answer within {} s", DATABASE_TIMEOUT.as_secs()),
        };
        checks.insert("database".to_string(), database);
        let subscriptions = self
            .subscriptions
            .lock()
            .expect("never poisoned: no panics under the lock")
            .clone();
        for (queue, attached) in subscriptions {
            let state = if *attached.borrow() {
                "ok"
            } else {
                "not consuming (broker unreachable, or paused while the database is down)"
            };
            checks.insert(queue, state.to_string());
        }
        let ready = checks.values().all(|state| state == "ok");
        ReadinessReport {
            status: if ready { "ready" } else { "not ready" },
            checks,
        }
    }
}

/// Readiness: `200` when the database answers and every queue is being
/// consumed, else `503` naming what is not.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "service",
    responses(
        (status = 200, description = "Ready to take work", body = ReadinessReport),
        (status = 503, description = "A dependency is down; `checks` says which", body = ReadinessReport),
    ),
)]
pub async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.check().await;
    if report.is_ready() {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::telemetry::test_logger;

    fn database(up: Arc<AtomicBool>) -> Probe {
        Arc::new(move || {
            let up = up.load(Ordering::SeqCst);
            Box::pin(async move {
                if up {
                    Ok(())
                } else {
                    Err("connection refused".to_string())
                }
            })
        })
    }

    #[tokio::test]
    async fn ready_only_while_the_database_answers_and_every_queue_is_consumed() {
        let up = Arc::new(AtomicBool::new(true));
        let readiness = Readiness::new(database(up.clone()), test_logger());
        let (attached, watched) = watch::channel(true);
        readiness.watch("product.order_created".into(), watched);

        let all_up = readiness.check().await;
        up.store(false, Ordering::SeqCst);
        let database_down = readiness.check().await;
        up.store(true, Ordering::SeqCst);
        attached.send_replace(false);
        let detached = readiness.check().await;
        attached.send_replace(true);
        let back = readiness.check().await;

        assert!(all_up.is_ready(), "{all_up:?}");
        assert_eq!(database_down.status, "not ready");
        assert_eq!(database_down.checks["database"], "unavailable");
        assert_eq!(database_down.checks["product.order_created"], "ok");
        assert!(!detached.is_ready());
        assert_eq!(detached.checks["database"], "ok");
        assert!(detached.checks["product.order_created"].starts_with("not consuming"));
        assert!(back.is_ready(), "{back:?}");
    }
}
