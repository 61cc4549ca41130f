pub mod order_desk;

use contracts::events::StockEvent;
use messaging::consumer::EventConsumer;

/// The AMQP consumer of this service: stock outcomes in, `RecordStockOutcome` out.
pub type StockEventConsumer = EventConsumer<StockEvent, order_desk::RecordStockOutcome>;
