pub mod order_desk;
pub mod outbox_relay;
