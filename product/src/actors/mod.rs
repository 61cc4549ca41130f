pub mod catalogue;
pub mod stock_keeper;

use contracts::events::OrderCreated;
use messaging::consumer::EventConsumer;

/// Consumes `OrderCreated`: each becomes a `ReserveStock`.
pub type OrderCreatedConsumer = EventConsumer<OrderCreated, stock_keeper::ReserveStock>;
