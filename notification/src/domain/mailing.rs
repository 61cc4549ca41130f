//! What the `Mailer` does with an email once the ledger has recorded it:
//! send it, or count and log why not. Pure: the Mailer only applies it.

use shared::telemetry::LogLine;

use crate::domain::Email;

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

/// How many emails this process sent, and how many duplicates it skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailerCounters {
    pub sent: u64,
    pub already_sent: u64,
    /// Duplicates that arrived while another delivery was sending the email.
    pub in_progress: u64,
    /// Of `sent`, emails whose sender died and that were sent again.
    pub resent: u64,
}

impl MailerCounters {
    /// Each counter by its name, for `/metrics`.
    pub fn by_result(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("sent", self.sent),
            ("already_sent", self.already_sent),
            ("in_progress", self.in_progress),
            ("resent", self.resent),
        ]
    }
}

/// One of the counters of [`MailerCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailCounter {
    Sent,
    AlreadySent,
    InProgress,
    Resent,
}

impl MailerCounters {
    pub fn count(&mut self, counter: MailCounter) {
        let count = match counter {
            MailCounter::Sent => &mut self.sent,
            MailCounter::AlreadySent => &mut self.already_sent,
            MailCounter::InProgress => &mut self.in_progress,
            MailCounter::Resent => &mut self.resent,
        };
        *count += 1;
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
    use shared::events::OrderCreated;

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
    fn counters_count_what_they_are_named() {
        let mut counters = MailerCounters::default();
        counters.count(MailCounter::Sent);
        counters.count(MailCounter::Resent);
        assert_eq!(
            counters,
            MailerCounters {
                sent: 1,
                resent: 1,
                ..MailerCounters::default()
            }
        );
    }
}
