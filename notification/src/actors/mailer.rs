//! The `Mailer` "sends" the customer's emails — a log line until an SMTP
//! provider is wired in. Each email is recorded as pending before it goes
//! out and marked sent after, so a redelivery of a sent email sends
//! nothing. A mark that fails (the database is down, or failing over) is
//! retried by the sender itself until it lands, and the delivery is
//! acknowledged all the same: no other delivery or replica has reason to
//! send it again. Only a sender that dies between sending and marking, or
//! that cannot reach the database for longer than its lease (60 s, longer
//! than a failover), leaves an email to the sweep of pending emails
//! (at start and every 30 s), which sends it again: exactly once unless
//! that happens, never lost.

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;
use contracts::events::{OrderCreated, StockEvent};
use foundation::db::bounded;
use foundation::failure::{Classify, FailureKind};
use foundation::retry::backoff;
use foundation::telemetry::event_logger;
use messaging::consumer::BatchResult;
use sea_orm::DbErr;
use slog::{Logger, info, warn};
use uuid::Uuid;

use crate::domain::Email;
use crate::domain::mailing::{self, EmailOutcome, MailCounter, MailerCounters};
use crate::store::{EmailLedger, TakenOver};

/// How long a sender may hold a pending email before another takes it
/// over: longer than a database failover (the cluster test's stall under
/// 45 s), through which the sender keeps retrying its marks; short enough
/// that an email whose sender crashed goes out within a minute and a half.
pub const SEND_LEASE: Duration = Duration::from_secs(60);
/// Longest pause between two attempts to mark sent emails.
const MARK_RETRY_CAP: Duration = Duration::from_secs(2);
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
const SWEEP_BATCH: u64 = 100;

/// Email the customers about these events of their orders.
#[derive(Debug, Clone, Message)]
#[rtype(result = "BatchResult<EmailOutcome, MailError>")]
pub struct SendEmail(pub Vec<Email>);

impl From<Vec<OrderCreated>> for SendEmail {
    fn from(events: Vec<OrderCreated>) -> Self {
        Self(events.into_iter().map(Email::from).collect())
    }
}

impl From<Vec<StockEvent>> for SendEmail {
    fn from(events: Vec<StockEvent>) -> Self {
        Self(events.into_iter().map(Email::from).collect())
    }
}

/// Send the emails left pending by a crash or an outage.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, MailError>")]
pub struct SendUnsentEmails;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("could not record the email: {0}")]
    Database(#[from] DbErr),
}

impl Classify for MailError {
    fn kind(&self) -> FailureKind {
        match self {
            MailError::Database(e) => e.kind(),
        }
    }
}

/// How many emails of each kind this process sent, and how many duplicates
/// it skipped.
#[derive(Debug, Message)]
#[rtype(result = "MailerCounters")]
pub struct GetMailerCounters;

pub struct Mailer {
    ledger: EmailLedger,
    /// Sent, not yet marked: marked (never sent again) by the retries, or
    /// when their events come back; no sweep takes them.
    unmarked: HashSet<Uuid>,
    /// Failed attempts to mark since the last that succeeded.
    mark_failures: u32,
    /// A [`RetryMarks`] is scheduled or running; it schedules the next one
    /// for as long as anything is left unmarked.
    retrying_marks: bool,
    /// Being recorded and sent by a batch right now.
    sending: HashSet<Uuid>,
    counters: MailerCounters,
    log: Logger,
}

/// Mark the emails sent but not yet marked.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct RetryMarks;

impl Mailer {
    pub fn new(ledger: EmailLedger, log: Logger) -> Self {
        Self {
            ledger,
            unmarked: HashSet::new(),
            mark_failures: 0,
            retrying_marks: false,
            sending: HashSet::new(),
            counters: MailerCounters::default(),
            log,
        }
    }

    /// Marks the emails of `event_ids` sent. Until that is committed they
    /// are remembered, and retried in the background if it fails: the
    /// caller need not wait for the database to send nothing twice.
    fn mark_all(&mut self, event_ids: Vec<Uuid>) -> ResponseActFuture<Self, ()> {
        self.unmarked.extend(event_ids.iter().copied());
        let ledger = self.ledger.clone();
        Box::pin(
            async move {
                bounded(ledger.mark_all_sent(&event_ids))
                    .await
                    .map(|()| event_ids)
            }
            .into_actor(self)
            .map(|marked, mailer, ctx| match marked {
                Ok(event_ids) => {
                    for event_id in event_ids {
                        mailer.unmarked.remove(&event_id);
                    }
                }
                Err(e) => mailer.retry_marks_later(&e, ctx),
            }),
        )
    }

    /// This sender's pending emails that its own work is sending or
    /// marking: never to be taken back from the ledger meanwhile.
    fn in_hand(&self) -> Vec<Uuid> {
        self.unmarked.union(&self.sending).copied().collect()
    }

    fn retry_marks_later(&mut self, cause: &DbErr, ctx: &mut Context<Self>) {
        self.mark_failures += 1;
        if !self.retrying_marks {
            self.retrying_marks = true;
            warn!(self.log, "could not mark emails sent; retrying until it succeeds, sending nothing again";
                "unmarked" => self.unmarked.len(), "err" => %cause);
            ctx.notify_later(RetryMarks, backoff(1, MARK_RETRY_CAP));
        }
    }
}

impl Handler<RetryMarks> for Mailer {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: RetryMarks, _: &mut Context<Self>) -> Self::Result {
        if self.unmarked.is_empty() {
            (self.retrying_marks, self.mark_failures) = (false, 0);
            return Box::pin(fut::ready(()));
        }
        let event_ids: Vec<Uuid> = self.unmarked.iter().copied().collect();
        let ledger = self.ledger.clone();
        Box::pin(
            async move {
                bounded(ledger.mark_all_sent(&event_ids))
                    .await
                    .map(|()| event_ids)
            }
            .into_actor(self)
            .map(|marked, mailer, ctx| match marked {
                Ok(event_ids) => {
                    for event_id in &event_ids {
                        mailer.unmarked.remove(event_id);
                    }
                    info!(mailer.log, "marked the emails sent before the database failed";
                            "count" => event_ids.len(), "attempts" => mailer.mark_failures);
                    // Marks that failed meanwhile wait for this chain.
                    ctx.notify(RetryMarks);
                }
                Err(e) => {
                    mailer.mark_failures += 1;
                    if mailer.mark_failures.is_multiple_of(10) {
                        warn!(mailer.log, "still cannot mark emails sent";
                                "unmarked" => mailer.unmarked.len(), "err" => %e);
                    }
                    ctx.notify_later(RetryMarks, backoff(mailer.mark_failures, MARK_RETRY_CAP));
                }
            }),
        )
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(SendUnsentEmails);
        ctx.run_interval(SWEEP_INTERVAL, |_, ctx| ctx.notify(SendUnsentEmails));
    }
}

/// Sends `email`: for now, its line in the log.
fn send(log: &Logger, email: &Email) {
    mailing::email_line(email).write(&email_log(log, email));
}

fn email_log(log: &Logger, email: &Email) -> Logger {
    event_logger(
        log,
        email.event_id,
        email.order_id,
        email.request_id.as_deref(),
    )
}

impl Handler<SendEmail> for Mailer {
    type Result = ResponseActFuture<Self, BatchResult<EmailOutcome, MailError>>;

    fn handle(&mut self, SendEmail(emails): SendEmail, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        // Sent already, their mark lost to an outage: only mark them. Being
        // handled by another batch of ours right now: leave them to it.
        let earlier: Vec<Option<EmailOutcome>> = emails
            .iter()
            .map(|email| {
                if self.unmarked.contains(&email.event_id) {
                    Some(EmailOutcome::AlreadySent)
                } else if self.sending.contains(&email.event_id) {
                    Some(EmailOutcome::InProgress)
                } else {
                    None
                }
            })
            .collect();
        let in_hand = self.in_hand();
        let to_record: Vec<Email> = emails
            .iter()
            .zip(&earlier)
            .filter(|(_, earlier)| earlier.is_none())
            .map(|(email, _)| email.clone())
            .collect();
        self.sending
            .extend(to_record.iter().map(|email| email.event_id));
        Box::pin(
            async move {
                let recorded = bounded(ledger.record_all(&to_record, &in_hand)).await;
                (recorded, to_record)
            }
            .into_actor(self)
            .then(move |(recorded, to_record), mailer, _| -> Self::Result {
                for email in &to_record {
                    mailer.sending.remove(&email.event_id);
                }
                let mut recorded = match recorded {
                    Ok(recorded) => recorded.into_iter(),
                    Err(e) => return Box::pin(fut::ready(Err(e.into()))),
                };
                let mut outcomes = Vec::with_capacity(emails.len());
                let mut to_mark = vec![];
                for (email, earlier) in emails.iter().zip(earlier) {
                    match earlier {
                        Some(EmailOutcome::AlreadySent) => {
                            mailer.counters.count(email.kind, MailCounter::AlreadySent);
                            to_mark.push(email.event_id);
                            outcomes.push(EmailOutcome::AlreadySent);
                            continue;
                        }
                        Some(outcome) => {
                            mailer.counters.count(email.kind, MailCounter::InProgress);
                            outcomes.push(outcome);
                            continue;
                        }
                        None => {}
                    }
                    let recorded = recorded.next().expect("one answer per email recorded");
                    let effects = mailing::after_record(email, recorded);
                    if let Some(counter) = effects.count {
                        mailer.counters.count(email.kind, counter);
                    }
                    if let Some(line) = effects.log {
                        line.write(&email_log(&mailer.log, email));
                    }
                    if effects.outcome == EmailOutcome::Sent {
                        send(&mailer.log, email);
                        mailer.counters.count(email.kind, MailCounter::Sent);
                        to_mark.push(email.event_id);
                    }
                    outcomes.push(effects.outcome);
                }
                // Sent is sent: the delivery is done whether or not the
                // mark lands now (a failed one is retried in process).
                Box::pin(
                    mailer
                        .mark_all(to_mark)
                        .map(move |(), _, _| Ok(outcomes.into_iter().map(Ok).collect())),
                )
            }),
        )
    }
}

impl Handler<SendUnsentEmails> for Mailer {
    /// Atomic: no batch of this sender records an email while its sweep
    /// decides which of its own pending emails nobody here is handling.
    type Result = AtomicResponse<Self, Result<u64, MailError>>;

    fn handle(&mut self, _: SendUnsentEmails, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        let in_hand = self.in_hand();
        AtomicResponse::new(Box::pin(
            async move { bounded(ledger.take_over_unsent(SWEEP_BATCH, &in_hand)).await }
                .into_actor(self)
                .then(|taken, mailer, _| -> ResponseActFuture<Self, Result<u64, MailError>> {
                    let taken = match taken {
                        Ok(taken) => taken,
                        Err(e) => {
                            warn!(mailer.log, "could not send pending emails"; "err" => %e);
                            return Box::pin(fut::ready(Err(e.into())));
                        }
                    };
                    let (mut sent, mut resent) = (0, 0);
                    let mut to_mark = Vec::with_capacity(taken.len());
                    for TakenOver { email, own } in taken {
                        send(&mailer.log, &email);
                        mailer.counters.count(email.kind, MailCounter::Sent);
                        if !own {
                            mailer.counters.count(email.kind, MailCounter::Resent);
                            resent += 1;
                        }
                        sent += 1;
                        to_mark.push(email.event_id);
                    }
                    if resent > 0 {
                        info!(mailer.log, "sent emails whose sender had died"; "count" => resent);
                    }
                    if sent > resent {
                        info!(mailer.log, "sent emails recorded without this sender learning it";
                            "count" => sent - resent);
                    }
                    Box::pin(mailer.mark_all(to_mark).map(move |(), _, _| Ok(sent)))
                }),
        ))
    }
}

impl Handler<GetMailerCounters> for Mailer {
    type Result = MessageResult<GetMailerCounters>;

    fn handle(&mut self, _: GetMailerCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters.clone())
    }
}
