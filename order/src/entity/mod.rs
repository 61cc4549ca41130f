pub mod orders;
pub mod outbox;
