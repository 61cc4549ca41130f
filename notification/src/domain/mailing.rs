//! What the `Mailer` does with an email once the ledger has recorded it:
//! send it, or count and log why not. Pure: the Mailer only applies it.

use std::collections::BTreeMap;

use foundation::telemetry::LogLine;

use crate::domain::{Email, EmailKind};

/// What the ledger knew of an email when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First seen now: send it.
    New,
    /// Pending, and its sender gave no sign for longer than the lease:
    /// taken over, send it.
    TakenOver,
    /// Pending, claimed recently by another sender: leave it to them (the
    /// sweep takes it over if they never mark it).
    InProgress,
    /// Sent before: do not send it again.
    AlreadySent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    Sent,
    /// Sent before for this event: not sent again.
    AlreadySent,
    /// Another delivery of the same event is sending it right now.
    InProgress,
}

/// How many emails of one kind this process sent, and how many duplicates
/// it skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmailCounts {
    pub sent: u64,
    pub already_sent: u64,
    /// Duplicates that arrived while another delivery was sending the email.
    pub in_progress: u64,
    /// Of `sent`, emails whose sender died and that were sent again.
    pub resent: u64,
}

/// One of the counters of [`EmailCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailCounter {
    Sent,
    AlreadySent,
    InProgress,
    Resent,
}

impl EmailCounts {
    fn count(&mut self, counter: MailCounter) {
        let count = match counter {
            MailCounter::Sent => &mut self.sent,
            MailCounter::AlreadySent => &mut self.already_sent,
            MailCounter::InProgress => &mut self.in_progress,
            MailCounter::Resent => &mut self.resent,
        };
        *count += 1;
    }

    /// Each counter by its name, the value of its `result` label in `/metrics`.
    fn by_result(&self) -> [(&'static str, u64); 4] {
        [
            ("sent", self.sent),
            ("already_sent", self.already_sent),
            ("in_progress", self.in_progress),
            ("resent", self.resent),
        ]
    }
}

/// What the `Mailer` counted, by kind of email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailerCounters {
    by_kind: BTreeMap<EmailKind, EmailCounts>,
}

impl MailerCounters {
    pub fn count(&mut self, kind: EmailKind, counter: MailCounter) {
        self.by_kind.entry(kind).or_default().count(counter);
    }

    /// The counts of the emails of `kind`.
    pub fn of(&self, kind: EmailKind) -> EmailCounts {
        self.by_kind.get(&kind).copied().unwrap_or_default()
    }

    /// Each counter of each kind, by the values of its `kind` and `result`
    /// labels in `/metrics`: every kind, counted or not, so each series
    /// exists from the start.
    pub fn by_kind_and_result(&self) -> Vec<([&'static str; 2], u64)> {
        EmailKind::ALL
            .into_iter()
            .flat_map(|kind| {
                self.of(kind)
                    .by_result()
                    .map(|(result, value)| ([kind.as_str(), result], value))
            })
            .collect()
    }
}

/// What the `Mailer` does once the ledger has recorded an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    pub count: Option<MailCounter>,
    pub log: Option<LogLine>,
    /// `Sent`: send the email now, then mark it sent. Otherwise the answer
    /// as it stands: nothing is sent.
    pub outcome: EmailOutcome,
}

pub fn after_record(email: &Email, recorded: Recorded) -> Effects {
    let skipped = |count, message: &str, outcome| Effects {
        count: Some(count),
        log: Some(LogLine::info(message).with("kind", email.kind.as_str())),
        outcome,
    };
    match recorded {
        Recorded::New => Effects {
            count: None,
            log: None,
            outcome: EmailOutcome::Sent,
        },
        Recorded::TakenOver => Effects {
            count: Some(MailCounter::Resent),
            log: None,
            outcome: EmailOutcome::Sent,
        },
        Recorded::AlreadySent => skipped(
            MailCounter::AlreadySent,
            "email already sent, not sending it again",
            EmailOutcome::AlreadySent,
        ),
        Recorded::InProgress => skipped(
            MailCounter::InProgress,
            "email being sent by another delivery of this event",
            EmailOutcome::InProgress,
        ),
    }
}

/// The email itself, until an SMTP provider is wired in: the original
/// system's line, with this email's subject.
pub fn email_line(email: &Email) -> LogLine {
    LogLine::info(format!(
        "[x] NOTIFICATION: '{}' for purchased product: {}",
        email.kind.subject(),
        email.product_id
    ))
    .with("kind", email.kind.as_str())
    .with("quantity", email.quantity)
    .with("to", email.to.as_deref().unwrap_or("<no address>"))
}

#[cfg(test)]
mod tests {
    use contracts::events::OrderCreated;

    use super::*;

    fn email() -> Email {
        OrderCreated::new("123".into(), 1).into()
    }

    #[test]
    fn an_email_is_sent_unless_it_was_sent_or_is_being_sent() {
        let email = email();
        let cases = [
            (Recorded::New, None, EmailOutcome::Sent),
            (
                Recorded::TakenOver,
                Some(MailCounter::Resent),
                EmailOutcome::Sent,
            ),
            (
                Recorded::AlreadySent,
                Some(MailCounter::AlreadySent),
                EmailOutcome::AlreadySent,
            ),
            (
                Recorded::InProgress,
                Some(MailCounter::InProgress),
                EmailOutcome::InProgress,
            ),
        ];
        for (recorded, count, outcome) in cases {
            let effects = after_record(&email, recorded);
            assert_eq!(effects.count, count, "{recorded:?}");
            assert_eq!(effects.outcome, outcome, "{recorded:?}");
        }
        assert_eq!(
            after_record(&email, Recorded::AlreadySent).log,
            Some(
                LogLine::info("email already sent, not sending it again")
                    .with("kind", "order_received")
            )
        );
        assert_eq!(after_record(&email, Recorded::New).log, None);
    }

    #[test]
    fn the_email_is_the_original_line() {
        let mut email = email();
        assert_eq!(
            email_line(&email),
            LogLine::info("[x] NOTIFICATION: 'Sending email' for purchased product: 123")
                .with("kind", "order_received")
                .with("quantity", 1u32)
                .with("to", "<no address>")
        );
        email.to = Some("ada@example.com".into());
        assert!(
            email_line(&email)
                .fields
                .contains(&("to", "ada@example.com".into()))
        );
    }

    #[test]
    fn counters_count_what_they_are_named_for_the_kind_of_email() {
        let mut counters = MailerCounters::default();
        counters.count(EmailKind::OrderConfirmed, MailCounter::Sent);
        counters.count(EmailKind::OrderConfirmed, MailCounter::Resent);
        counters.count(EmailKind::OutOfStock, MailCounter::AlreadySent);
        assert_eq!(
            counters.of(EmailKind::OrderConfirmed),
            EmailCounts {
                sent: 1,
                resent: 1,
                ..EmailCounts::default()
            }
        );
        assert_eq!(
            counters.of(EmailKind::OrderReceived),
            EmailCounts::default()
        );
        let series = counters.by_kind_and_result();
        assert_eq!(series.len(), EmailKind::ALL.len() * 4);
        for (labels, value) in [
            (["order_confirmed", "sent"], 1),
            (["order_confirmed", "resent"], 1),
            (["out_of_stock", "already_sent"], 1),
            (["out_of_stock", "sent"], 0),
            (["order_received", "sent"], 0),
        ] {
            assert!(series.contains(&(labels, value)), "{labels:?}: {series:?}");
        }
    }
}
