//! The `Mailer` "sends" the customer's emails — a log line until an SMTP
//! provider is wired in. Each email is recorded as pending before it goes
//! out and marked sent after, so a redelivery of a sent email sends
//! nothing. An email whose mark was lost to an outage is marked when its
//! delivery comes back; one lost to a crash between sending and marking is
//! sent again by the sweep of pending emails (at start and every 30 s) once
//! its lease ends: at least once, and exactly once unless the process dies
//! in that window.

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;
use sea_orm::DbErr;
use shared::consumer::{BatchResult, Classify, FailureKind};
use shared::db::bounded;
use shared::events::{OrderCreated, StockEvent};
use shared::telemetry::event_logger;
use slog::{Logger, info, warn};
use uuid::Uuid;

use crate::domain::Email;
use crate::domain::mailing::{self, EmailOutcome, MailCounter, MailerCounters};
use crate::store::EmailLedger;

/// How long a sender may hold a pending email before another takes it over.
pub const SEND_LEASE: Duration = Duration::from_secs(30);
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
    /// Sent, not yet marked: a retry after an outage only marks them.
    unmarked: HashSet<Uuid>,
    counters: MailerCounters,
    log: Logger,
}

impl Mailer {
    pub fn new(ledger: EmailLedger, log: Logger) -> Self {
        Self {
            ledger,
            unmarked: HashSet::new(),
            counters: MailerCounters::default(),
            log,
        }
    }

    /// Marks the emails of `event_ids` sent; until that is committed they
    /// are remembered, so that a redelivery after an outage only marks them.
    fn mark_all(&mut self, event_ids: Vec<Uuid>) -> ResponseActFuture<Self, Result<(), MailError>> {
        self.unmarked.extend(event_ids.iter().copied());
        let ledger = self.ledger.clone();
        Box::pin(
            async move {
                bounded(ledger.mark_all_sent(&event_ids)).await?;
                Ok::<_, MailError>(event_ids)
            }
            .into_actor(self)
            .map(|marked, mailer, _| {
                for event_id in marked? {
                    mailer.unmarked.remove(&event_id);
                }
                Ok(())
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
        // Sent already, their mark lost to an outage: only mark them.
        let sent_before: Vec<bool> = emails
            .iter()
            .map(|email| self.unmarked.contains(&email.event_id))
            .collect();
        let to_record: Vec<Email> = emails
            .iter()
            .zip(&sent_before)
            .filter(|(_, sent)| !**sent)
            .map(|(email, _)| email.clone())
            .collect();
        Box::pin(
            async move { bounded(ledger.record_all(&to_record)).await }
                .into_actor(self)
                .then(move |recorded, mailer, _| -> Self::Result {
                    let mut recorded = match recorded {
                        Ok(recorded) => recorded.into_iter(),
                        Err(e) => return Box::pin(fut::ready(Err(e.into()))),
                    };
                    let mut outcomes = Vec::with_capacity(emails.len());
                    let mut to_mark = vec![];
                    for (email, sent_before) in emails.iter().zip(sent_before) {
                        if sent_before {
                            mailer.counters.count(email.kind, MailCounter::AlreadySent);
                            to_mark.push(email.event_id);
                            outcomes.push(EmailOutcome::AlreadySent);
                            continue;
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
                    Box::pin(mailer.mark_all(to_mark).map(move |marked, _, _| {
                        marked?;
                        Ok(outcomes.into_iter().map(Ok).collect())
                    }))
                }),
        )
    }
}

impl Handler<SendUnsentEmails> for Mailer {
    type Result = ResponseActFuture<Self, Result<u64, MailError>>;

    fn handle(&mut self, _: SendUnsentEmails, _: &mut Context<Self>) -> Self::Result {
        let (ledger, log) = (self.ledger.clone(), self.log.clone());
        Box::pin(
            async move {
                let mut sent = vec![];
                for email in bounded(ledger.take_over_unsent(SWEEP_BATCH)).await? {
                    send(&log, &email);
                    sent.push(email.kind);
                    // A failed mark leaves the email to a later sweep.
                    bounded(ledger.mark_sent(email.event_id)).await?;
                }
                Ok::<_, MailError>(sent)
            }
            .into_actor(self)
            .map(|sent, mailer, _| match sent {
                Ok(kinds) => {
                    for &kind in &kinds {
                        mailer.counters.count(kind, MailCounter::Sent);
                        mailer.counters.count(kind, MailCounter::Resent);
                    }
                    if !kinds.is_empty() {
                        info!(mailer.log, "sent emails whose sender had died";
                            "count" => kinds.len());
                    }
                    Ok(kinds.len() as u64)
                }
                Err(e) => {
                    warn!(mailer.log, "could not send pending emails"; "err" => %e);
                    Err(e)
                }
            }),
        )
    }
}

impl Handler<GetMailerCounters> for Mailer {
    type Result = MessageResult<GetMailerCounters>;

    fn handle(&mut self, _: GetMailerCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters.clone())
    }
}
