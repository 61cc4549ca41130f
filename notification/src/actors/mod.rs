pub mod mailer;

use contracts::events::{OrderCreated, StockEvent};
use messaging::consumer::EventConsumer;

/// Consumes `OrderCreated`: "order received" emails.
pub type OrderCreatedConsumer = EventConsumer<OrderCreated, mailer::SendEmail>;
/// Consumes stock outcomes: "order confirmed" or "sorry" emails.
pub type StockEventConsumer = EventConsumer<StockEvent, mailer::SendEmail>;
