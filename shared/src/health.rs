//! Whether a service can still do its work. A domain actor that died (a
//! panic in a handler closes its mailbox) cannot be revived in place, so the
//! service reports itself failing on `GET /health` and stops with a non-zero
//! exit code: the orchestrator restarts it, and the deliveries it held go
//! back to their queues.

use actix_web::{HttpResponse, web};
use serde_json::json;
use tokio::sync::watch;

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

/// `GET /health`: `200` while the service can work, `503` with the reason
/// once it cannot (it is about to exit).
pub async fn health(health: web::Data<ServiceHealth>) -> HttpResponse {
    match health.failure() {
        None => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "failing", "reason": reason })),
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
