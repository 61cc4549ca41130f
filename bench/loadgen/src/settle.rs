//! Between phases: wait until the services have finished the work the last
//! phase gave them (no pending order, nothing left in an outbox, no email
//! unsent, and no new email for a second), so the next phase is measured on
//! an idle system. How long that takes is a figure of its own: the backlog
//! the phase left behind.

use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::db::{self, Pending};
use crate::progress::{Meter, Ticker, stop_requested};

/// How long the email count must stay still.
const QUIET: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize)]
pub struct SettleReport {
    /// After which phase.
    pub after: String,
    pub seconds: f64,
    pub settled: bool,
    /// Work in hand when waiting started.
    pub backlog_at_start: u64,
}

/// Decides, from successive counts, when the services are done.
#[derive(Debug, Default)]
pub struct Quiescence {
    emails: Option<i64>,
    still_since: Option<Instant>,
}

impl Quiescence {
    /// True once nothing is pending and the email count has not moved for [`QUIET`].
    pub fn observe(&mut self, pending: Pending, now: Instant) -> bool {
        if self.emails != Some(pending.emails) {
            self.emails = Some(pending.emails);
            self.still_since = Some(now);
        }
        let still_for = self
            .still_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        pending.backlog() == 0 && still_for >= QUIET
    }
}

pub fn settle(
    rt: &Runtime,
    database: &DatabaseConnection,
    after: &str,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<SettleReport> {
    let started = Instant::now();
    let meter = Meter::new();
    let mut state = Quiescence::default();
    let first = rt.block_on(db::pending_work(database))?;
    meter.set_backlog(first.backlog());
    let ticker = Ticker::start("settling", "orders final", meter.clone(), quiet, |_, _| {
        None
    });
    let (mut last_orders, mut pending) = (first.orders, first);
    let settled = loop {
        if state.observe(pending, Instant::now()) {
            break true;
        }
        if stop_requested() || started.elapsed() >= timeout {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
        pending = rt.block_on(db::pending_work(database))?;
        meter.done(u64::try_from(last_orders - pending.orders).unwrap_or(0));
        meter.set_backlog(pending.backlog());
        last_orders = pending.orders;
    };
    ticker.finish();
    if !settled && !stop_requested() {
        eprintln!(
            "warning: the services still had work in hand after {} s ({} pending orders, {} \
             outbox rows, {} unsent emails); the next phase shares the machine with it",
            timeout.as_secs(),
            pending.orders,
            pending.outbox,
            pending.emails_unsent
        );
    }
    Ok(SettleReport {
        after: after.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        settled,
        backlog_at_start: first.backlog(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(orders: i64, emails: i64) -> Pending {
        Pending {
            orders,
            outbox: 0,
            emails_unsent: 0,
            emails,
        }
    }

    #[test]
    fn settled_once_nothing_is_pending_and_emails_stop_growing() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut state = Quiescence::default();

        assert!(!state.observe(pending(5, 10), at(0)));
        assert!(
            !state.observe(pending(0, 20), at(200)),
            "emails still growing"
        );
        assert!(
            !state.observe(pending(0, 20), at(800)),
            "still for 0.6 s only"
        );
        assert!(state.observe(pending(0, 20), at(1_200)));
    }

    #[test]
    fn any_pending_work_keeps_it_waiting() {
        let t0 = Instant::now();
        let mut state = Quiescence::default();
        let outbox = Pending {
            outbox: 1,
            ..pending(0, 0)
        };
        let email = Pending {
            emails_unsent: 1,
            ..pending(0, 0)
        };
        assert!(!state.observe(outbox, t0));
        assert!(!state.observe(outbox, t0 + Duration::from_secs(5)));
        assert!(!state.observe(email, t0 + Duration::from_secs(6)));
        assert!(state.observe(pending(0, 0), t0 + Duration::from_secs(7)));
    }
}
