pub mod order_desk;

use shared::consumer::EventConsumer;
use shared::events::StockEvent;

/// The AMQP consumer of this service: stock outcomes in, `RecordStockOutcome` out.
pub type StockEventConsumer = EventConsumer<StockEvent, order_desk::RecordStockOutcome>;
