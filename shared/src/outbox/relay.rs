//! The `OutboxRelay` publishes committed outbox rows with publisher confirms
//! and marks them published only after the broker confirmed them. Rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, so several replicas of a service
//! never publish the same row at the same time; a crash before the mark only means
//! the row is published again, which idempotent consumers absorb.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use slog::{Logger, debug, info, warn};

use super::entity as outbox;
use crate::amqp::AmqpPublisher;
use crate::broker::{BrokerError, OutgoingMessage, Publisher};
use crate::retry::backoff;

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows claimed and published per round.
    pub batch_size: u64,
    /// How often to look for rows nobody woke the relay for (other replicas'
    /// rows, rows left by a crash).
    pub poll_interval: Duration,
    /// How long published rows are kept before they are pruned.
    pub retention: Duration,
    pub prune_interval: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 200,
            poll_interval: Duration::from_millis(500),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
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
    pub published: u64,
    pub failed_rounds: u64,
    pub pruned: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox unavailable: {0}")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// The result of one round: rows published, and the failure that stopped
/// the others, if any.
pub struct Round {
    pub published: u64,
    pub claimed: u64,
    pub failure: Option<RelayError>,
}

/// The rows of one source service in the outbox table, as its relay uses them.
#[derive(Clone)]
pub struct Outbox {
    db: DatabaseConnection,
    source: &'static str,
}

impl Outbox {
    pub fn new(db: DatabaseConnection, source: &'static str) -> Self {
        Self { db, source }
    }

    /// Claims up to `limit` pending rows, publishes them and marks those the
    /// broker confirmed, in one transaction holding the row locks.
    pub async fn publish_pending(
        &self,
        publisher: &dyn Publisher,
        limit: u64,
    ) -> Result<Round, DbErr> {
        let txn = self.db.begin().await?;
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Source.eq(self.source))
            .filter(outbox::Column::PublishedAt.is_null())
            .order_by_asc(outbox::Column::CreatedAt)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        let claimed = rows.len() as u64;
        // Published together: the confirms are awaited in parallel.
        let results = join_all(rows.iter().map(|row| {
            publisher.publish(OutgoingMessage {
                exchange: row.exchange.clone(),
                message_id: row.event_id.to_string(),
                body: row.payload.clone().into_bytes(),
            })
        }))
        .await;
        let mut confirmed = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => confirmed.push(row.event_id),
                Err(e) => failure = failure.or(Some(RelayError::Broker(e))),
            }
        }
        if !confirmed.is_empty() {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::PublishedAt, Expr::current_timestamp())
                .filter(outbox::Column::EventId.is_in(confirmed.iter().copied()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(Round {
            published: confirmed.len() as u64,
            claimed,
            failure,
        })
    }

    /// Deletes rows published more than `retention` ago.
    pub async fn prune(&self, retention: Duration) -> Result<u64, DbErr> {
        let cutoff = chrono::Utc::now() - retention;
        let deleted = outbox::Entity::delete_many()
            .filter(outbox::Column::Source.eq(self.source))
            .filter(outbox::Column::PublishedAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}

pub struct OutboxRelay {
    outbox: Outbox,
    publisher: Arc<dyn Publisher>,
    settings: RelaySettings,
    /// A round is in flight; a wake arriving meanwhile asks for another.
    running: bool,
    wake_again: bool,
    /// Consecutive failed rounds, and no round before `resume_at`.
    failures_in_a_row: u32,
    resume_at: Option<Instant>,
    counters: RelayCounters,
    log: Logger,
}

impl OutboxRelay {
    /// Starts the relay of `source`'s rows, publishing to `exchanges` on one
    /// connection to the broker at `amqp_url` (opened on the first publish).
    pub fn start_publishing(
        db: DatabaseConnection,
        source: &'static str,
        exchanges: &[&'static str],
        amqp_url: &str,
        settings: RelaySettings,
        log: Logger,
    ) -> Addr<Self> {
        let publisher =
            AmqpPublisher::new(amqp_url, &format!("{source}-publisher"), exchanges, &log);
        Self::new(Outbox::new(db, source), Arc::new(publisher), settings, log).start()
    }

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
            running: false,
            wake_again: false,
            failures_in_a_row: 0,
            resume_at: None,
            counters: RelayCounters::default(),
            log,
        }
    }

    fn start_round(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            self.wake_again = true;
            return;
        }
        if self.resume_at.is_some_and(|at| Instant::now() < at) {
            // Backing off: the scheduled retry will pick these rows up.
            return;
        }
        self.running = true;
        self.wake_again = false;
        let outbox = self.outbox.clone();
        let publisher = self.publisher.clone();
        let limit = self.settings.batch_size;
        ctx.spawn(
            async move { outbox.publish_pending(publisher.as_ref(), limit).await }
                .into_actor(self)
                .map(|round, relay, ctx| relay.finish_round(round, ctx)),
        );
    }

    fn finish_round(&mut self, round: Result<Round, DbErr>, ctx: &mut Context<Self>) {
        self.running = false;
        let (published, claimed, failure) = match round {
            Ok(round) => (round.published, round.claimed, round.failure),
            Err(e) => (0, 0, Some(RelayError::Database(e))),
        };
        self.counters.published += published;
        if published > 0 {
            debug!(self.log, "published outbox rows"; "count" => published);
        }
        match failure {
            None => {
                if self.failures_in_a_row > 0 {
                    info!(self.log, "outbox relay recovered"; "failed_rounds" => self.failures_in_a_row);
                }
                self.failures_in_a_row = 0;
                self.resume_at = None;
                // A full batch means more may be waiting.
                if self.wake_again || claimed == self.settings.batch_size {
                    self.start_round(ctx);
                }
            }
            Some(e) => {
                self.counters.failed_rounds += 1;
                self.failures_in_a_row += 1;
                let delay = backoff(self.failures_in_a_row, Duration::from_secs(5));
                warn!(self.log, "outbox relay could not publish, will retry";
                    "err" => %e, "published" => published, "retry_in_ms" => delay.as_millis() as u64);
                self.resume_at = Some(Instant::now() + delay);
                ctx.run_later(delay, |relay, ctx| {
                    relay.resume_at = None;
                    relay.start_round(ctx);
                });
            }
        }
    }
}

impl Actor for OutboxRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Rows left unpublished by an earlier run go out right away.
        self.start_round(ctx);
        ctx.run_interval(self.settings.poll_interval, |relay, ctx| {
            relay.start_round(ctx)
        });
        ctx.run_interval(self.settings.prune_interval, |relay, ctx| {
            let outbox = relay.outbox.clone();
            let retention = relay.settings.retention;
            ctx.spawn(
                async move { outbox.prune(retention).await }
                    .into_actor(relay)
                    .map(|pruned, relay, _| match pruned {
                        Ok(count) => relay.counters.pruned += count,
                        Err(e) => warn!(relay.log, "could not prune the outbox"; "err" => %e),
                    }),
            );
        });
    }
}

impl Handler<WakeRelay> for OutboxRelay {
    type Result = ();

    fn handle(&mut self, _: WakeRelay, ctx: &mut Context<Self>) {
        self.start_round(ctx);
    }
}

impl Handler<GetRelayCounters> for OutboxRelay {
    type Result = MessageResult<GetRelayCounters>;

    fn handle(&mut self, _: GetRelayCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
