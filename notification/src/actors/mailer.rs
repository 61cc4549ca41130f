//! The `Mailer` "sends" the customer's emails — a log line until an SMTP
//! provider is wired in: "order received" on `OrderCreated`, then "order
//! confirmed" or "sorry, ..." on the stock outcome. At most once per event:
//! the event id is recorded in `sent_emails` before the email goes out, so
//! neither a redelivery nor a restart sends it again.

use actix::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, TryInsertResult};
use shared::consumer::Transience;
use shared::events::{Event, OrderCreated, RejectionReason, StockEvent};
use slog::{Logger, info, o};
use uuid::Uuid;

use crate::entity::sent_emails;

/// Which email an event calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    OrderReceived,
    OrderConfirmed,
    OutOfStock,
    UnknownProduct,
}

impl EmailKind {
    /// As stored in `sent_emails.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::OrderReceived => "order_received",
            EmailKind::OrderConfirmed => "order_confirmed",
            EmailKind::OutOfStock => "out_of_stock",
            EmailKind::UnknownProduct => "unknown_product",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            EmailKind::OrderReceived => "Sending email",
            EmailKind::OrderConfirmed => "Order confirmed",
            EmailKind::OutOfStock => "Sorry, out of stock",
            EmailKind::UnknownProduct => "Sorry, we do not sell this product",
        }
    }
}

/// Email the customer about the event `event_id` of their order.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<EmailOutcome, MailError>")]
pub struct SendEmail {
    pub kind: EmailKind,
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub product_id: String,
    pub quantity: u32,
    pub to: Option<String>,
}

impl From<OrderCreated> for SendEmail {
    fn from(event: OrderCreated) -> Self {
        Self {
            kind: EmailKind::OrderReceived,
            event_id: event.event_id,
            order_id: event.order_id,
            product_id: event.product_id,
            quantity: event.quantity,
            to: event.customer_email,
        }
    }
}

impl From<StockEvent> for SendEmail {
    fn from(event: StockEvent) -> Self {
        let kind = match event.rejection() {
            None => EmailKind::OrderConfirmed,
            Some(RejectionReason::OutOfStock) => EmailKind::OutOfStock,
            Some(RejectionReason::UnknownProduct) => EmailKind::UnknownProduct,
        };
        let event_id = event.event_id();
        let outcome = match event {
            StockEvent::StockReserved(outcome) | StockEvent::StockRejected(outcome) => outcome,
        };
        Self {
            kind,
            event_id,
            order_id: outcome.order_id,
            product_id: outcome.product_id,
            quantity: outcome.quantity,
            to: outcome.customer_email,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    Sent,
    /// Sent before for this event: not sent again.
    AlreadySent,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("could not record the email: {0}")]
    Database(#[from] DbErr),
}

impl Transience for MailError {
    fn is_transient(&self) -> bool {
        match self {
            MailError::Database(_) => true,
        }
    }
}

/// How many emails this process sent, and how many duplicates it skipped.
#[derive(Debug, Message)]
#[rtype(result = "MailerCounters")]
pub struct GetMailerCounters;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailerCounters {
    pub sent: u64,
    pub already_sent: u64,
}

/// The `sent_emails` table.
#[derive(Clone)]
pub struct SentLedger {
    db: DatabaseConnection,
}

impl SentLedger {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records the email; false if it was recorded before.
    pub async fn record(&self, email: &SendEmail) -> Result<bool, DbErr> {
        let inserted = sent_emails::Entity::insert(sent_emails::ActiveModel {
            event_id: Set(email.event_id),
            order_id: Set(email.order_id),
            product_id: Set(email.product_id.clone()),
            kind: Set(email.kind.as_str().to_string()),
            ..Default::default()
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&self.db)
        .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(1)))
    }
}

pub struct Mailer {
    ledger: SentLedger,
    counters: MailerCounters,
    log: Logger,
}

impl Mailer {
    pub fn new(ledger: SentLedger, log: Logger) -> Self {
        Self {
            ledger,
            counters: MailerCounters::default(),
            log,
        }
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;
}

impl Handler<SendEmail> for Mailer {
    type Result = ResponseActFuture<Self, Result<EmailOutcome, MailError>>;

    fn handle(&mut self, email: SendEmail, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        Box::pin(
            async move {
                let first_time = ledger.record(&email).await?;
                Ok::<_, MailError>((email, first_time))
            }
            .into_actor(self)
            .map(|recorded, mailer, _| {
                let (email, first_time) = recorded?;
                let log = mailer.log.new(o!(
                    "event_id" => email.event_id.to_string(),
                    "order_id" => email.order_id.to_string(),
                ));
                if first_time {
                    // The original system's line, with the subject of this email.
                    info!(log, "[x] NOTIFICATION: '{}' for purchased product: {}",
                        email.kind.subject(), email.product_id;
                        "kind" => email.kind.as_str(), "quantity" => email.quantity,
                        "to" => email.to.as_deref().unwrap_or("<no address>"));
                    mailer.counters.sent += 1;
                    Ok(EmailOutcome::Sent)
                } else {
                    info!(log, "email already sent, not sending it again"; "kind" => email.kind.as_str());
                    mailer.counters.already_sent += 1;
                    Ok(EmailOutcome::AlreadySent)
                }
            }),
        )
    }
}

impl Handler<GetMailerCounters> for Mailer {
    type Result = MessageResult<GetMailerCounters>;

    fn handle(&mut self, _: GetMailerCounters, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters)
    }
}
