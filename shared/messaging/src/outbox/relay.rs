//! The `OutboxRelay` actor publishes its service's committed outbox rows
//! with publisher confirms and marks them published only after the broker
//! confirmed them. The work is in [`Outbox`], the timing in [`Schedule`];
//! the actor only wires them to wakes and timers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DbErr;
use slog::{Logger, debug, info, warn};

use super::schedule::{Next, Outcome, Schedule};
use super::store::{Outbox, Round};
use crate::broker::Publisher;

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed and published per round.
    pub batch_size: u64,
    /// How often to look for rows nobody woke the relay for (other replicas'
    /// rows, rows left by a crash).
    pub poll_interval: Duration,
    /// How long a claimed row is reserved for one relay: longer than a
    /// publish can take (connect and confirm timeouts).
    pub lease: Duration,
    /// How long published rows are kept before they are pruned.
    pub retention: Duration,
    pub prune_interval: Duration,
    /// Rows deleted per statement when pruning.
    pub prune_batch: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 200,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
            // A few hundred milliseconds per statement at most, far from
            // the 10 s statement timeout.
            prune_batch: 1000,
        }
    }
}

/// New rows were committed: publish them now.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WakeRelay;

/// What the relay has done so far.
#[derive(Debug, Message)]
#[rtype(result = "RelayCounters")]
pub struct GetRelayCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Rounds run: each claims what is pending and publishes it.
    pub rounds: u64,
    pub published: u64,
    pub failed_rounds: u64,
    pub pruned: u64,
}

pub struct OutboxRelay {
    outbox: Outbox,
    publisher: Arc<dyn Publisher>,
    settings: RelaySettings,
    schedule: Schedule,
    counters: RelayCounters,
    log: Logger,
}

impl OutboxRelay {
    pub fn new(
        outbox: Outbox,
        publisher: Arc<dyn Publisher>,
        settings: RelaySettings,
        log: Logger,
    ) -> Self {
        Self {
            outbox,
            publisher,
            settings,
            schedule: Schedule::default(),
            counters: RelayCounters::default(),
            log,
        }
    }

    fn request_round(&mut self, ctx: &mut Context<Self>) {
        if !self.schedule.request(Instant::now()) {
            return;
        }
        let (outbox, publisher) = (self.outbox.clone(), self.publisher.clone());
        let (limit, lease) = (self.settings.batch_size, self.settings.lease);
        ctx.spawn(
            async move {
                outbox
                    .publish_pending(publisher.as_ref(), limit, lease)
                    .await
            }
            .into_actor(self)
            .map(|round, relay, ctx| relay.finish_round(round, ctx)),
        );
    }

    fn finish_round(&mut self, round: Result<Round, DbErr>, ctx: &mut Context<Self>) {
        let (claimed, published, failure) = match round {
            Ok(round) => (
                round.claimed,
                round.published,
                round.failure.map(|e| e.to_string()),
            ),
            Err(e) => (0, 0, Some(format!("outbox unavailable: {e}"))),
        };
        self.counters.rounds += 1;
        self.counters.published += published;
        if published > 0 {
            debug!(self.log, "published outbox rows"; "count" => published);
        }
        let recovering = self.schedule.failures_in_a_row();
        let outcome = Outcome {
            failed: failure.is_some(),
            full: claimed == self.settings.batch_size,
        };
        match self.schedule.finished(outcome, Instant::now()) {
            Next::Idle => {}
            Next::RunAgain => self.request_round(ctx),
            Next::RetryIn(delay) => {
                self.counters.failed_rounds += 1;
                warn!(self.log, "outbox relay could not publish, will retry";
                    "err" => failure.unwrap_or_default(), "published" => published,
                    "retry_in_ms" => delay.as_millis() as u64);
                ctx.run_later(delay, |relay, ctx| relay.request_round(ctx));
                return;
            }
        }
        if recovering > 0 {
            info!(self.log, "outbox relay recovered"; "failed_rounds" => recovering);
        }
    }
}

impl Actor for OutboxRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Rows left unpublished by an earlier run go out right away.
        self.request_round(ctx);
        ctx.run_interval(self.settings.poll_interval, |relay, ctx| {
            relay.request_round(ctx)
        });
        ctx.run_interval(self.settings.prune_interval, |relay, ctx| {
            let outbox = relay.outbox.clone();
            let (retention, batch) = (relay.settings.retention, relay.settings.prune_batch);
            ctx.spawn(
                async move { outbox.prune(retention, batch).await }
                    .into_actor(relay)
                    .map(|pruned, relay, _| match pruned {
                        Ok(pruned) => relay.counters.pruned += pruned.rows,
                        Err(e) => warn!(relay.log, "could not prune the outbox"; "err" => %e),
                    }),
            );
        });
    }
}

impl Handler<WakeRelay> for OutboxRelay {
    type Result = ();

    fn handle(&mut self, _: WakeRelay, ctx: &mut Context<Self>) {
        self.request_round(ctx);
    }
}

impl Handler<GetRelayCounters> for OutboxRelay {
    type Result = MessageResult<GetRelayCounters>;

    fn handle(&mut self, _: GetRelayCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
