pub mod idempotency_keys;
pub mod orders;
