//! Whether a service can still do its work. A domain actor that died (a
//! panic in a handler closes its mailbox) cannot be revived in place, so the
//! service reports itself failing on `GET /health` and stops with a non-zero
//! exit code: the orchestrator restarts it, and the deliveries it held go
//! back to their queues.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

#[derive(Clone)]
pub struct ServiceHealth {
    failure: watch::Sender<Option<String>>,
}

impl Default for ServiceHealth {
    fn default() -> Self {
        Self {
            failure: watch::channel(None).0,
        }
    }
}

impl ServiceHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// The service cannot go on; the first reason given is kept.
    pub fn fail(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.failure.send_if_modified(|failure| {
            let first = failure.is_none();
            if first {
                *failure = Some(reason);
            }
            first
        });
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Resolves with the reason once the service has failed.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        let reason = failure
            .wait_for(Option::is_some)
            .await
            .expect("the sender lives in self");
        reason.clone().unwrap_or_default()
    }
}

/// The body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`, or `failing` once the service is about to exit.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why it is failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Liveness: `200` while the service can work, `503` with the reason once
/// it cannot (it is about to exit).
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses(
        (status = 200, description = "The service can work", body = HealthStatus),
        (status = 503, description = "A domain actor died; the service is exiting so that it is restarted", body = HealthStatus),
    ),
)]
pub async fn health(health: web::Data<ServiceHealth>) -> HttpResponse {
    match health.failure() {
        None => HttpResponse::Ok().json(HealthStatus {
            status: "ok",
            reason: None,
        }),
        Some(reason) => HttpResponse::ServiceUnavailable().json(HealthStatus {
            status: "failing",
            reason: Some(reason),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_first_failure_and_wakes_the_waiter() {
        let health = ServiceHealth::new();
        let waiter = tokio::spawn({
            let health = health.clone();
            async move { health.failed().await }
        });

        health.fail("StockKeeper stopped");
        health.fail("something later");

        assert_eq!(waiter.await.unwrap(), "StockKeeper stopped");
        assert_eq!(health.failure().as_deref(), Some("StockKeeper stopped"));
    }
}
