pub mod mailer;

use shared::consumer::EventConsumer;
use shared::events::{OrderCreated, StockEvent};

/// Consumes `OrderCreated`: "order received" emails.
pub type OrderCreatedConsumer = EventConsumer<OrderCreated, mailer::SendEmail>;
/// Consumes stock outcomes: "order confirmed" or "sorry" emails.
pub type StockEventConsumer = EventConsumer<StockEvent, mailer::SendEmail>;
