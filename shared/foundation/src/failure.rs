//! Whose fault a failure is: a consumer settles a delivery accordingly, an
//! outage pauses work rather than blaming it.

/// Whose fault a failed delivery is, which decides what becomes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A dependency is unavailable (connection refused or lost, pool
    /// exhausted, timeouts): nothing is wrong with the message. It is parked
    /// and the consumers pause until the dependency answers again; never
    /// counted toward the delivery limit.
    Outage,
    /// The message failed for a reason of its own that might pass: it goes
    /// back to the queue, and the delivery limit dead-letters it if it keeps
    /// failing.
    Retry,
    /// The message can never succeed: dead-lettered at once.
    Poison,
}

/// Tells the consumer whose fault a domain error is.
pub trait Classify {
    fn kind(&self) -> FailureKind;
}

/// A handler that cannot fail.
impl Classify for std::convert::Infallible {
    fn kind(&self) -> FailureKind {
        match *self {}
    }
}
